"""The main job: train small models with every integration, then list what was versioned.

    python examples/tour.py          # about a minute on a laptop CPU

Runs each example in its own process, the way a user would (so that each gets a fresh
interpreter), into one store (``$MODELTRACK_STORE``, default ``./.modeltrack``):

1. ``quickstart.py``        the core API in a plain numpy loop
2. ``sklearn_example.py``   the scikit-learn decorator (a Pipeline and a GridSearchCV)
3. ``lightning_example.py`` the Lightning callback, two runs and a diff
4. ``keras_example.py``     the Keras callback on the torch backend
5. ``modeltrack run -- python zero_code_train.py``  an unmodified script, autologged

and prints ``modeltrack models`` and the versions of each model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = [
    ["quickstart.py"],
    ["sklearn_example.py"],
    ["lightning_example.py"],
    ["keras_example.py"],
]


def main() -> int:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    env.setdefault("MODELTRACK_STORE", str(Path(".modeltrack").absolute()))
    cli = [sys.executable, "-m", "modeltrack"]
    failed = []
    for step in STEPS:
        print(f"\n=== {step[0]} ===", flush=True)
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / step[0])], env=env)
        print(f"--- {step[0]}: exit {rc} in {time.perf_counter() - t:.1f}s", flush=True)
        if rc:
            failed.append(step[0])
    print("\n=== modeltrack run -- python zero_code_train.py ===", flush=True)
    rc = subprocess.call(
        [*cli, "run", "--model", "wine-forest", "--", "python", str(HERE / "zero_code_train.py")], env=env
    )
    if rc:
        failed.append("zero_code_train.py")
    print(f"\n=== the store: {env['MODELTRACK_STORE']} ===", flush=True)
    subprocess.call([*cli, "models"], env=env)
    models = subprocess.run([*cli, "models", "--json"], env=env, capture_output=True, text=True).stdout
    import json

    for model in json.loads(models or "[]"):
        print(f"\n--- modeltrack versions {model['name']}", flush=True)
        subprocess.call([*cli, "versions", model["name"]], env=env)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
