"""Core benchmark: modeltrack vs MLflow, side by side in one run (run by hand, not in CI).

    python bench/bench_core.py            # full run (10,000-version listing included)
    python bench/bench_core.py --quick    # smaller sizes, for a smoke test

Prints, for each measurement, modeltrack's figure, MLflow's figure for the same work, and
the ratio. Needs the `bench` extra (MLflow 3.17.2): pip install -c constraints.txt -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS: list[tuple[str, str, str, str]] = []


def row(what: str, ours: str, theirs: str, ratio: str) -> None:
    ROWS.append((what, ours, theirs, ratio))
    print(f"{what:52s} {ours:>18s} {theirs:>18s} {ratio:>10s}", flush=True)


def import_time(module: str, runs: int) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def bench_imports(runs: int) -> None:
    ours, theirs = import_time("modeltrack", runs), import_time("mlflow", runs)
    row(
        "import (median, fresh interpreter)",
        f"{ours * 1000:.0f} ms",
        f"{theirs * 1000:.0f} ms",
        f"{theirs / ours:.0f}x faster",
    )


def bench_metrics(tmp: Path, points: int, mlflow_seconds: float) -> None:
    import mlflow
    from mlflow.entities import Metric

    import modeltrack as mt

    per_call = 10
    names = [f"m{i}" for i in range(per_call)]
    calls = points // per_call
    v = mt.start("bench-metrics", store=str(tmp / "mt-metrics"))
    values = {n: 0.5 for n in names}
    t = time.perf_counter()
    for step in range(calls):
        v.log_metrics(values, step=step, epoch=step // 1000)
    buffered = time.perf_counter() - t
    t = time.perf_counter()
    v.finish()
    finish = time.perf_counter() - t
    ours_buffered = points / buffered
    ours_total = points / (buffered + finish)

    t = time.perf_counter()
    v2 = mt.start("bench-metrics", store=str(tmp / "mt-metrics"))
    for step in range(points):
        v2.log_metric("loss", 0.5, step=step)
    single = time.perf_counter() - t
    v2.finish()

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        n = 0
        t = time.perf_counter()
        while time.perf_counter() - t < mlflow_seconds:
            mlflow.log_metric("loss", 0.5, step=n)
            n += 1
        one = n / (time.perf_counter() - t)
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        n = 0
        t = time.perf_counter()
        ts = int(time.time() * 1000)
        while time.perf_counter() - t < mlflow_seconds:
            batch = [Metric(names[i % per_call], 0.5, ts, n + i // per_call) for i in range(1000)]
            client.log_batch(run.info.run_id, metrics=batch)
            n += 1000
        batch_rate = n / (time.perf_counter() - t)
    row(
        f"metric points/s, log_metrics x{per_call} (buffered)",
        f"{ours_buffered:,.0f}",
        f"{batch_rate:,.0f} batch",
        f"{ours_buffered / batch_rate:,.0f}x",
    )
    row(
        "metric points/s incl. flush to disk at finish",
        f"{ours_total:,.0f}",
        f"{batch_rate:,.0f} batch",
        f"{ours_total / batch_rate:,.0f}x",
    )
    row(
        "metric points/s, one log_metric call per point",
        f"{points / single:,.0f}",
        f"{one:,.0f}",
        f"{points / single / one:,.0f}x",
    )


def bench_versions(tmp: Path, count: int) -> None:
    import mlflow

    import modeltrack as mt

    store = str(tmp / "mt-versions")
    # The process's first version scans the installed packages (~0.1-0.4 s, cached on disk
    # under MODELTRACK_CACHE afterwards): shown on its own row, then the steady rate.
    t = time.perf_counter()
    with mt.start("bench-versions", store=store, params={"i": -1}) as v:
        v.log_metrics({"loss": 1.0}, epoch=0)
    ours_first = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(count):
        with mt.start("bench-versions", store=store, params={"i": i}) as v:
            v.log_metrics({"loss": 1.0 / (i + 1)}, epoch=0)
    ours_create = count / (time.perf_counter() - t)
    t = time.perf_counter()
    rows = mt.versions("bench-versions", store=store)
    ours_list = time.perf_counter() - t
    assert len(rows) == count + 1

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow-reg.db'}")
    client = mlflow.MlflowClient()
    client.create_registered_model("bench-versions")
    t = time.perf_counter()
    client.create_model_version("bench-versions", source=f"{tmp}/artifacts/first")
    theirs_first = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(count):
        client.create_model_version("bench-versions", source=f"{tmp}/artifacts/{i}")
    theirs_create = count / (time.perf_counter() - t)
    t = time.perf_counter()
    found = []
    token = None
    while True:
        page = client.search_model_versions("name='bench-versions'", max_results=10000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            break
    theirs_list = time.perf_counter() - t
    assert len(found) == count + 1
    row(
        "first version of a process (cold package scan)",
        f"{ours_first * 1000:.0f} ms",
        f"{theirs_first * 1000:.0f} ms",
        "",
    )
    row(
        f"versions created/s ({count} after the first, start+finish vs create_model_version)",
        f"{ours_create:,.0f}/s",
        f"{theirs_create:,.0f}/s",
        f"{ours_create / theirs_create:.1f}x",
    )
    row(
        f"list {count + 1} versions",
        f"{ours_list * 1000:.0f} ms",
        f"{theirs_list * 1000:.0f} ms",
        f"{theirs_list / ours_list:.1f}x faster",
    )


def bench_listing(tmp: Path, count: int) -> None:
    import modeltrack as mt

    store = str(tmp / "mt-10k")
    for i in range(count):
        with mt.start("bench-10k", store=store) as v:
            v.log_metrics({"loss": 1.0 / (i + 1), "acc": 0.5}, epoch=0)
    os.environ["MODELTRACK_INDEX"] = "0"
    t = time.perf_counter()
    mt.versions("bench-10k", store=store)
    cold = time.perf_counter() - t
    del os.environ["MODELTRACK_INDEX"]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        rows = mt.versions("bench-10k", store=store)
        times.append(time.perf_counter() - t)
    assert len(rows) == count
    row(
        f"list {count} versions (index / files only)",
        f"{min(times) * 1000:.0f} ms",
        f"{cold * 1000:.0f} ms",
        "target <500",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--versions-only", action="store_true", help="only the version creation/listing rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["MODELTRACK_CACHE"] = str(tmp / "cache")
        os.chdir(tmp)  # no git repository around: measure the store, not `git diff`
        print(f"{'':52s} {'modeltrack':>18s} {'MLflow 3.17.2':>18s} {'ratio':>10s}")
        if args.versions_only:
            bench_versions(tmp, 100 if args.quick else 1000)
            return
        bench_imports(3 if args.quick else 7)
        bench_metrics(tmp, 100_000 if args.quick else 1_000_000, 1.0 if args.quick else 3.0)
        bench_versions(tmp, 100 if args.quick else 1000)
        bench_listing(tmp, 500 if args.quick else 10_000)


if __name__ == "__main__":
    main()
