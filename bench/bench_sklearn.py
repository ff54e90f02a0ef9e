"""Wall time of a small scikit-learn fit: untracked, modeltrack autolog, MLflow autolog.

Run by hand (not in CI)::

    python bench/bench_sklearn.py                 # 5 alternating repetitions
    python bench/bench_sklearn.py --reps 7 --json bench/results/sklearn.json

Each repetition runs every variant in a fresh interpreter, in turn (alternating, so that
machine load hits them alike). In each interpreter the job (``--job logreg``: a
``LogisticRegression`` fit on 500x20 synthetic data; ``--job rf``: a
``RandomForestClassifier(n_estimators=200, n_jobs=1)`` fit on 4000x20) is done ``--fits`` times: the first (cold: one-time set-up such as
MLflow's database or modeltrack's package scan) is reported apart from the median of the
others (warm). The tracked variants store the fitted model: modeltrack through
``@modeltrack.integrations.sklearn.autolog`` (the version is finished when the call
returns), MLflow through ``mlflow.sklearn.autolog(log_models=True)`` on a temporary SQLite
store. ``modeltrack-global``: ``autolog()`` switched on globally; the ``fit`` call is timed
(what the user's program waits for), then ``finish_pending()`` (until the version is
complete), timed apart. Reported: medians over the repetitions (and the minimum), and the
time added to the untracked fit.

    python bench/bench_sklearn.py --job rf --reps 7 --fits 3 --variants untracked,modeltrack-global,modeltrack
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("untracked", "modeltrack", "mlflow")
JOBS = {"logreg": "LogisticRegression fit (500x20)", "rf": "RandomForestClassifier(200 trees, n_jobs=1) fit (4000x20)"}


def _data(rows: int) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 20))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return X, y


def _model(job: str) -> Any:
    if job == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=0)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=200)


def child(variant: str, fits: int, workdir: str, job_name: str = "logreg") -> dict[str, Any]:
    """Time ``fits`` fits of one variant in this interpreter."""
    os.chdir(workdir)
    os.environ["MODELTRACK_STORE"] = str(Path(workdir) / "mt-store")
    X, y = _data(4000 if job_name == "rf" else 500)
    done: Any = None  # modeltrack-global: what completes the version (timed apart)
    if variant == "untracked":

        def job() -> Any:
            return _model(job_name).fit(X, y)

    elif variant == "modeltrack":
        from modeltrack.integrations import sklearn as mt_sklearn

        @mt_sklearn.autolog(model="bench")
        def job() -> Any:
            return _model(job_name).fit(X, y)

    elif variant == "modeltrack-global":
        from modeltrack.integrations import sklearn as mt_sklearn

        mt_sklearn.autolog(model="bench")
        done = mt_sklearn.finish_pending

        def job() -> Any:
            return _model(job_name).fit(X, y)

    elif variant == "mlflow":
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        mlflow.set_tracking_uri(f"sqlite:///{Path(workdir) / 'mlflow.db'}")
        mlflow.sklearn.autolog(log_models=True, silent=True)

        def job() -> Any:
            return _model(job_name).fit(X, y)

    else:
        raise SystemExit(f"unknown variant {variant!r}")
    times, totals = [], []
    for _ in range(fits):
        t0 = time.perf_counter()
        job()
        times.append(time.perf_counter() - t0)
        if done is not None:
            done()
        totals.append(time.perf_counter() - t0)
    warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
    complete = statistics.median(totals[1:]) if len(totals) > 1 else totals[0]
    return {"variant": variant, "cold": times[0], "warm": warm, "complete": complete}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions (default 5)")
    parser.add_argument("--fits", type=int, default=6, help="fits per interpreter: 1 cold + warm ones (default 6)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS)
    )
    parser.add_argument("--job", choices=sorted(JOBS), default="logreg", help="what is fitted (default logreg)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.fits, args.workdir, args.job)))
        return
    variants = [v for v in args.variants.split(",") if v]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTRACK_")}
    for rep in range(args.reps):
        for variant in variants:
            with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as workdir:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        variant,
                        "--fits",
                        str(args.fits),
                        "--workdir",
                        workdir,
                        "--job",
                        args.job,
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
            if out.returncode != 0:
                sys.stderr.write(out.stderr)
                raise SystemExit(f"{variant} failed (exit {out.returncode})")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[variant].append(res)
            print(
                f"rep {rep + 1}/{args.reps} {variant:<11} cold {res['cold'] * 1000:8.1f} ms  "
                f"warm {res['warm'] * 1000:8.1f} ms  complete {res['complete'] * 1000:8.1f} ms",
                file=sys.stderr,
            )
    keys = ("cold", "warm", "complete")
    summary = {v: {k: statistics.median(r[k] for r in runs[v]) for k in keys} for v in variants}
    lows = {v: {k: min(r[k] for r in runs[v]) for k in keys} for v in variants}
    base, low = summary.get("untracked"), lows.get("untracked")
    print(
        f"\nscikit-learn {JOBS[args.job]}, medians (min) of {args.reps} alternating repetitions "
        f"({args.fits - 1} warm fits each)\n"
    )
    print("| variant | cold fit (ms) | warm fit (ms) | warm ratio | warm fit + version complete (ms) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants:
        s, m = summary[v], lows[v]
        ratio = f"{s['warm'] / base['warm']:.3f}x (min {m['warm'] / low['warm']:.3f}x)" if base and low else "-"
        ratio_c = (
            f"{s['complete'] / base['warm']:.3f}x (min {m['complete'] / low['warm']:.3f}x)" if base and low else "-"
        )
        print(
            f"| {v} | {s['cold'] * 1000:.1f} ({m['cold'] * 1000:.1f}) | {s['warm'] * 1000:.1f} ({m['warm'] * 1000:.1f}) "
            f"| {ratio} | {s['complete'] * 1000:.1f} ({m['complete'] * 1000:.1f}) | {ratio_c} |"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
