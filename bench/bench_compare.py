"""modeltrack against an earlier modeltrack, measured side by side in one run.

Usage (an earlier commit checked out as a worktree, e.g. ``git worktree add /tmp/base REV``)::

    python -m compileall -q modeltrack /tmp/base/modeltrack
    PYTHONPATH=/tmp/base python bench/bench_compare.py   # the earlier one
    python bench/bench_compare.py                         # this one

Prints: import time (median of 7 fresh interpreters), versions created per second (start +
finish with one metric), listing 1,000 versions (first, then again), and buffered metric
points per second (10 metrics a call).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT = "import time; t = time.perf_counter(); import modeltrack; print(time.perf_counter() - t)"


def import_ms(runs: int = 7) -> float:
    times = [
        float(subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return 1000 * statistics.median(times)


def main() -> None:
    import modeltrack as mt

    tmp = Path(tempfile.mkdtemp())
    os.environ["MODELTRACK_CACHE"] = str(tmp / "cache")
    store = str(tmp / "store")
    count = 1000
    t = time.perf_counter()
    for i in range(count):
        with mt.start("bench", store=store, params={"i": i}) as v:
            v.log_metrics({"loss": 1.0 / (i + 1)}, epoch=0)
    created = count / (time.perf_counter() - t)
    listed = []
    for _ in range(2):
        t = time.perf_counter()
        assert len(mt.versions("bench", store=store)) == count
        listed.append(1000 * (time.perf_counter() - t))
    v = mt.start("points", store=store)
    values = {k: 0.5 for k in "abcdefghij"}
    t = time.perf_counter()
    for i in range(200_000):
        v.log_metrics(values, step=i)
    points = 2_000_000 / (time.perf_counter() - t)
    v.finish()
    where = mt.__file__.split("/modeltrack/")[0]
    print(
        f"{where}: import {import_ms():.0f} ms, versions {created:.0f}/s, list {count} "
        f"{listed[0]:.0f} ms (again {listed[1]:.0f} ms), points/s {points:,.0f}"
    )


if __name__ == "__main__":
    main()
