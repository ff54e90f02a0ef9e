"""Wall time of ``modeltrack reproduce``, with and without ``--reuse-env``.

Run by hand (not in CI)::

    python bench/bench_reproduce.py                  # 3 repetitions of each
    python bench/bench_reproduce.py --reps 5 --json bench/results/reproduce.json

The job: a temporary git repository holding a scikit-learn script (a random forest on a
48-row CSV file read from outside the repository), trained once with ``modeltrack run`` in
this interpreter, with an uncommitted change. Then, alternating, ``reproduce v1
--reuse-env`` (clone + diff, re-run in this interpreter, compare) and ``reproduce v1``
(clone + diff, a fresh virtual environment with this modeltrack copied in and the
distributions the run imported installed by pip at their recorded versions, re-run,
compare). pip's own wheel cache stays warm between repetitions (the first fresh build of a
machine also downloads the wheels). Each reproduction must match (exit 0), or the bench
stops. Reported: the original run and the medians (and minimum) of each kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import argparse

import numpy as np
from sklearn.ensemble import RandomForestClassifier

p = argparse.ArgumentParser()
p.add_argument("--data")
p.add_argument("--trees", type=int, default=5)
args = p.parse_args()
rows = np.loadtxt(args.data, delimiter=",")
X, y = rows[:, :-1], (rows[:, -1] > 0.5).astype(int)
RandomForestClassifier(n_estimators=args.trees, max_depth=3, random_state=0).fit(X, y)
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited with {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reproduce-") as tmp:
        base = Path(tmp)
        repo, data = base / "repo", base / "data.csv"
        repo.mkdir()
        rng = random.Random(0)
        rows = []
        for _ in range(48):
            x = [rng.random() for _ in range(3)]
            rows.append(",".join(f"{v:.6f}" for v in x) + f",{(x[0] + x[1]) / 2:.6f}")
        data.write_text("\n".join(rows) + "\n")
        (repo / "train.py").write_text(SCRIPT)
        _git(repo, "init", "-q")
        _git(repo, "-c", "user.email=b@b", "-c", "user.name=b", "add", "train.py")
        _git(repo, "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "v1")
        (repo / "train.py").write_text(SCRIPT.replace("max_depth=3", "max_depth=4"))  # uncommitted
        env = {**os.environ, "MODELTRACK_STORE": str(base / "store"), "MODELTRACK_CACHE": str(base / "cache")}
        mt = [sys.executable, "-m", "modeltrack"]
        original = _timed([*mt, "run", "--model", "bench", "--", "python", "train.py", "--data", str(data)], repo, env)
        reuse: list[float] = []
        fresh: list[float] = []
        constraint = ["--constraint", str(ROOT / "constraints.txt")]
        for _ in range(args.reps):
            reuse.append(_timed([*mt, "reproduce", "bench@v1", "--reuse-env"], repo, env))
            fresh.append(_timed([*mt, "reproduce", "bench@v1", *constraint], repo, env))
            print(f"reuse-env {reuse[-1]:.2f} s   fresh env {fresh[-1]:.2f} s", flush=True)
        plan = subprocess.run(
            [*mt, "reproduce", "bench@v1", "--dry-run", "--json"], cwd=repo, env=env, capture_output=True, text=True
        )
        installed = len(json.loads(plan.stdout)["environment"]["install"])
    out: dict[str, Any] = {
        "original_run_s": round(original, 2),
        "reuse_env_median_s": round(statistics.median(reuse), 2),
        "reuse_env_min_s": round(min(reuse), 2),
        "fresh_env_median_s": round(statistics.median(fresh), 2),
        "fresh_env_min_s": round(min(fresh), 2),
        "fresh_env_packages": installed,
        "reps": args.reps,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
