"""Switch modeltrack autologging on at start-up, then run the ``sitecustomize`` this one hides.

Only ``modeltrack run`` puts this directory on ``PYTHONPATH``; it does nothing unless
``MODELTRACK_AUTOLOG`` is set.
"""

import os
import sys


def _chain() -> None:
    """Import the next ``sitecustomize`` on ``sys.path`` (e.g. a distribution's), which
    this file shadows."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = None
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or os.path.dirname(os.path.abspath(spec.origin or "")) == here:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


def _start() -> None:
    if os.environ.get("MODELTRACK_AUTOLOG", "").strip().lower() in ("", "0", "false", "no", "off"):
        return
    try:
        from modeltrack.autologging import autolog_from_env
    except ImportError as exc:
        sys.stderr.write(f"modeltrack: autologging is off in this interpreter ({sys.executable}): {exc}\n")
        return
    autolog_from_env()


_start()
try:
    _chain()
except Exception as _exc:  # noqa: BLE001 - start-up must go on, like site.py does
    sys.stderr.write(f"modeltrack: the shadowed sitecustomize failed: {_exc!r}\n")
