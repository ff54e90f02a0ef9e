"""Randomness capture: the seeds the frameworks were given and whether deterministic
algorithms were on.

Read lazily and only from frameworks that are already imported (``sys.modules``): the core
never imports a framework. Never raises; what cannot be read is left out.

* Lightning's ``seed_everything`` sets ``PL_GLOBAL_SEED`` (and ``PL_SEED_WORKERS`` for
  ``workers=True``), read from the environment;
* ``torch.initial_seed()`` is the seed of torch's default generator (``torch.manual_seed``,
  ``seed_everything`` and Keras ``set_random_seed`` on the torch backend all set it), and
  ``torch.are_deterministic_algorithms_enabled()`` says whether ``deterministic=True`` /
  ``torch.use_deterministic_algorithms(True)`` was in force, with cuDNN's flags;
* Keras ``keras.utils.set_random_seed`` keeps its seed in Keras's global state;
* scikit-learn's ``random_state`` is a parameter, recorded with the params.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _torch(out: dict[str, Any]) -> None:
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        out["torch_seed"] = int(torch.initial_seed())
    except Exception:  # noqa: BLE001 - a half-imported torch must not fail capture
        pass
    try:
        out["torch_deterministic"] = bool(torch.are_deterministic_algorithms_enabled())
    except Exception:  # noqa: BLE001
        pass
    cudnn = getattr(getattr(torch, "backends", None), "cudnn", None)
    if cudnn is not None:
        try:
            out["cudnn_deterministic"] = bool(cudnn.deterministic)
            out["cudnn_benchmark"] = bool(cudnn.benchmark)
        except Exception:  # noqa: BLE001
            pass


def _keras(out: dict[str, Any]) -> None:
    if "keras" not in sys.modules:
        return
    state = sys.modules.get("keras.src.backend.common.global_state")
    rng = sys.modules.get("keras.src.utils.rng_utils")
    if state is None:
        return
    try:
        name = getattr(rng, "GLOBAL_RANDOM_SEED", "global_random_seed")
        seed = state.get_global_attribute(name)
    except Exception:  # noqa: BLE001
        return
    if isinstance(seed, int):
        out["keras_seed"] = seed


def _lightning(out: dict[str, Any]) -> None:
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is not None:
        try:
            out["lightning_seed"] = int(seed)
        except ValueError:
            out["lightning_seed"] = seed[:100]
    workers = os.environ.get("PL_SEED_WORKERS")
    if workers is not None:
        out["lightning_seed_workers"] = workers.strip() not in ("", "0")


def randomness() -> dict[str, Any]:
    """``{"lightning_seed", "lightning_seed_workers", "torch_seed", "torch_deterministic",
    "cudnn_deterministic", "cudnn_benchmark", "keras_seed", "pythonhashseed"}``, each only
    when known."""
    out: dict[str, Any] = {}
    for part in (_lightning, _torch, _keras):
        try:
            part(out)
        except Exception:  # noqa: BLE001 - capture must never fail a run
            pass
    if os.environ.get("PYTHONHASHSEED") is not None:
        out["pythonhashseed"] = os.environ["PYTHONHASHSEED"][:100]
    return out


__all__ = ["randomness"]
