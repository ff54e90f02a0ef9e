"""The failure policy of tracking: warn and go on, or raise in strict mode (foundation)."""

from __future__ import annotations

import warnings

from . import config
from .errors import ModelTrackWarning


def report(exc: BaseException, what: str) -> None:
    """Warn about a tracking failure (training goes on), or raise it in strict mode.

    Args:
        exc: what went wrong.
        what: what tracking was doing, for the message ("storing artifact x of m@v3").

    Raises:
        BaseException: ``exc`` itself, when ``MODELTRACK_STRICT`` is on.
    """
    if config.strict():
        raise exc
    warnings.warn(f"modeltrack: {what} failed, training continues: {exc}", ModelTrackWarning, stacklevel=3)


__all__ = ["report"]
