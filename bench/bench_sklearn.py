"""Wall time of a small scikit-learn fit: untracked, modeltrack autolog, MLflow autolog.

Run by hand (not in CI)::

    python bench/bench_sklearn.py                 # 5 alternating repetitions
    python bench/bench_sklearn.py --reps 7 --json bench/results/sklearn.json

Each repetition runs every variant in a fresh interpreter, in turn (alternating, so that
machine load hits them alike). In each interpreter the job is a ``LogisticRegression`` fit
on 500x20 synthetic data, done ``--fits`` times: the first (cold: one-time set-up such as
MLflow's database or modeltrack's package scan) is reported apart from the median of the
others (warm). The tracked variants store the fitted model: modeltrack through
``@modeltrack.integrations.sklearn.autolog`` (the version is finished when the call
returns), MLflow through ``mlflow.sklearn.autolog(log_models=True)`` on a temporary SQLite
store. Reported: medians over the repetitions and the time added to the untracked fit.
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


def _data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=500) > 0).astype(int)
    return X, y


def child(variant: str, fits: int, workdir: str) -> dict[str, Any]:
    """Time ``fits`` fits of one variant in this interpreter."""
    os.chdir(workdir)
    os.environ["MODELTRACK_STORE"] = str(Path(workdir) / "mt-store")
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    if variant == "untracked":

        def job() -> Any:
            return LogisticRegression(max_iter=200).fit(X, y)

    elif variant == "modeltrack":
        from modeltrack.integrations import sklearn as mt_sklearn

        @mt_sklearn.autolog(model="bench")
        def job() -> Any:
            return LogisticRegression(max_iter=200).fit(X, y)

    elif variant == "mlflow":
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        mlflow.set_tracking_uri(f"sqlite:///{Path(workdir) / 'mlflow.db'}")
        mlflow.sklearn.autolog(log_models=True, silent=True)

        def job() -> Any:
            return LogisticRegression(max_iter=200).fit(X, y)

    else:
        raise SystemExit(f"unknown variant {variant!r}")
    times = []
    for _ in range(fits):
        t0 = time.perf_counter()
        job()
        times.append(time.perf_counter() - t0)
    return {"variant": variant, "cold": times[0], "warm": statistics.median(times[1:]) if len(times) > 1 else times[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions (default 5)")
    parser.add_argument("--fits", type=int, default=6, help="fits per interpreter: 1 cold + warm ones (default 6)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS)
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.fits, args.workdir)))
        return
    variants = [v for v in args.variants.split(",") if v]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELTRACK_")}
    for rep in range(args.reps):
        for variant in variants:
            with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as workdir:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", variant, "--fits", str(args.fits), "--workdir", workdir],
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
                f"warm {res['warm'] * 1000:8.1f} ms",
                file=sys.stderr,
            )
    summary = {v: {k: statistics.median(r[k] for r in runs[v]) for k in ("cold", "warm")} for v in variants}
    base = summary.get("untracked")
    print(
        f"\nscikit-learn LogisticRegression fit (500x20), medians of {args.reps} alternating repetitions "
        f"({args.fits - 1} warm fits each)\n"
    )
    print("| variant | cold fit (ms) | added cold (ms) | warm fit (ms) | added warm (ms) | warm ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants:
        s = summary[v]
        add_c = f"{(s['cold'] - base['cold']) * 1000:+.1f}" if base else "-"
        add_w = f"{(s['warm'] - base['warm']) * 1000:+.1f}" if base else "-"
        ratio = f"{s['warm'] / base['warm']:.2f}x" if base else "-"
        print(f"| {v} | {s['cold'] * 1000:.1f} | {add_c} | {s['warm'] * 1000:.1f} | {add_w} | {ratio} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
