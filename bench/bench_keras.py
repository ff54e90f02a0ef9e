"""Wall time of a small Keras 3 fit: untracked, modeltrack callback, MLflow autolog.

Run by hand (not in CI)::

    python bench/bench_keras.py                 # 5 alternating repetitions
    python bench/bench_keras.py --reps 7 --json bench/results/keras.json

Each repetition runs every variant in a fresh interpreter, in turn (alternating, so that
machine load hits them alike), with ``KERAS_BACKEND=torch`` on CPU. In each interpreter one
untracked warm-up fit (on a slice of the data) builds the kernels, then the job runs
``--fits`` times: an MLP (32-64-64-1) on 10,000x32 synthetic data, 5 epochs, batch 64,
``validation_split=0.2``. The first timed fit (cold: one-time set-up such as MLflow's
database or modeltrack's package scan) is reported apart from the median of the others
(warm). Both tracked variants store the model: modeltrack with its default callback
(best checkpoint by ``val_loss`` plus the final ``model.keras``), MLflow with
``mlflow.keras.autolog()`` (its default: metrics, params and the model) on a temporary SQLite
store. Reported: medians over the repetitions of wall time and process CPU time, their
overhead against the untracked fit, and for modeltrack the time spent inside its callback
hooks (its share of the training thread, which machine load hardly blurs). Torch runs on
one thread by default (``--threads``): with two busy cores shared with other work, torch's
spinning thread pool makes wall times swing several-fold from one run to the next.
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
import traceback
from pathlib import Path
from typing import Any

VARIANTS = ("untracked", "modeltrack", "mlflow")
EPOCHS, BATCH = 5, 64


def _data() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(10_000, 32)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3] + rng.normal(scale=0.5, size=10_000) > 0).astype("float32")
    return x, y


def _model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _time_hooks(cls: Any, spent: list[float]) -> None:
    """Add the wall time spent in ``cls``'s Keras hooks to ``spent[0]`` (the training
    thread's share of tracking, which machine load hardly blurs)."""
    for name in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_test_begin", "on_train_end"):
        original = getattr(cls, name)

        def timed(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        setattr(cls, name, timed)


def child(variant: str, fits: int, workdir: str, threads: int) -> dict[str, Any]:
    """Time ``fits`` fits of one variant in this interpreter."""
    os.chdir(workdir)
    os.environ["KERAS_BACKEND"] = "torch"
    os.environ["MODELTRACK_STORE"] = str(Path(workdir) / "mt-store")
    import keras  # noqa: F401 - imported before timing
    import torch

    if threads:
        torch.set_num_threads(threads)
    x, y = _data()
    _model().fit(x[:2000], y[:2000], epochs=1, batch_size=BATCH, verbose=0)  # warm-up, untracked
    spent = [0.0]
    if variant == "modeltrack":
        from modeltrack.integrations.keras import ModelTrackCallback

        _time_hooks(ModelTrackCallback, spent)

        def make_callbacks() -> list[Any]:
            return [ModelTrackCallback(model="bench-keras")]

    elif variant == "mlflow":
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        mlflow.set_tracking_uri(f"sqlite:///{Path(workdir) / 'mlflow.db'}")
        mlflow.keras.autolog(silent=True)

        def make_callbacks() -> list[Any]:
            return []

    elif variant == "untracked":

        def make_callbacks() -> list[Any]:
            return []

    else:
        raise SystemExit(f"unknown variant {variant!r}")
    walls, cpus, hooks = [], [], []
    for _ in range(fits):
        model = _model()
        callbacks = make_callbacks()
        spent[0] = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_split=0.2, verbose=0, callbacks=callbacks)
        except Exception as exc:
            # e.g. an autolog that cannot handle Keras 3 on the torch backend: that is the result.
            sys.stderr.write(traceback.format_exc())
            return {"variant": variant, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]}
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        hooks.append(spent[0])
    note = None
    if variant == "mlflow":
        import mlflow

        runs = mlflow.search_runs(search_all_experiments=True)
        note = f"{len(runs)} MLflow runs recorded"
    elif variant == "modeltrack":
        import modeltrack as mt

        vs = mt.versions("bench-keras")
        note = f"{sum(v['status'] == 'finished' for v in vs)} modeltrack versions finished"

    def warm(values: list[float]) -> float:
        return statistics.median(values[1:]) if len(values) > 1 else values[0]

    return {
        "variant": variant,
        "cold": walls[0],
        "warm": warm(walls),
        "cold_cpu": cpus[0],
        "warm_cpu": warm(cpus),
        "cold_hooks": hooks[0],
        "warm_hooks": warm(hooks),
        "note": note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions (default 5)")
    parser.add_argument("--fits", type=int, default=3, help="fits per interpreter: 1 cold + warm ones (default 3)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS)
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: stable on a shared machine; 0 = torch's default)",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.fits, args.workdir, args.threads)))
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
                        "--threads",
                        str(args.threads),
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
            if res.get("error"):
                print(f"rep {rep + 1}/{args.reps} {variant:<11} FAILED: {res['error']}", file=sys.stderr)
            else:
                print(
                    f"rep {rep + 1}/{args.reps} {variant:<11} cold {res['cold']:7.3f} s  warm {res['warm']:7.3f} s"
                    f"  warm cpu {res['warm_cpu']:7.3f} s  ({res.get('note') or ''})",
                    file=sys.stderr,
                )
    keys = ("cold", "warm", "cold_cpu", "warm_cpu", "cold_hooks", "warm_hooks")
    summary: dict[str, dict[str, Any]] = {}
    for v in variants:
        ok = [r for r in runs[v] if not r.get("error")]
        summary[v] = {k: statistics.median(r[k] for r in ok) for k in keys} if ok else {"error": runs[v][0]["error"]}
    base = summary.get("untracked")
    have_base = base is not None and "error" not in base
    print(
        f"\nKeras 3 (torch backend, CPU, {args.threads or 'default'} thread(s)) MLP 32-64-64-1, 10,000x32, "
        f"{EPOCHS} epochs, batch {BATCH}, validation_split=0.2; medians of {args.reps} alternating repetitions "
        f"({args.fits - 1} warm fit(s) each)\n"
    )
    print("| variant | cold fit (s) | overhead | warm fit (s) | overhead | warm CPU (s) | overhead | in hooks, warm |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        s = summary[v]
        if "error" in s:
            print(f"| {v} | failed: {s['error']} | | | | | | |")
            continue

        def over(key: str, s: dict[str, Any] = s) -> str:
            return f"{(s[key] / base[key] - 1) * 100:+.1f}%" if have_base and base else "-"

        hooks = (
            f"{s['warm_hooks'] * 1000:.0f} ms ({s['warm_hooks'] / s['warm'] * 100:.1f}%)" if v == "modeltrack" else "-"
        )
        print(
            f"| {v} | {s['cold']:.3f} | {over('cold')} | {s['warm']:.3f} | {over('warm')} | "
            f"{s['warm_cpu']:.3f} | {over('warm_cpu')} | {hooks} |"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
