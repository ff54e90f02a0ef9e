"""modeltrack: every training run becomes a numbered, comparable, loadable model version.

Example:
    >>> import modeltrack as mt
    >>> with mt.start("churn", params={"lr": 0.01}) as v:
    ...     v.log_metrics({"loss": 0.31}, epoch=0)
"""

from __future__ import annotations

from ._version import __version__
from .api import (
    alias_history,
    artifact_path,
    changelog,
    diff,
    evaluate,
    filter_versions,
    gc,
    models,
    promote,
    remove_alias,
    resolve,
    rollback,
    set_alias,
    set_notes,
    show,
    tag,
    verify,
    versions,
)
from .autologging import autolog
from .errors import ModelTrackError, ModelTrackWarning
from .loading import load
from .repo import Repo
from .tracking import Version, active_versions, start

__all__ = [
    "ModelTrackError",
    "ModelTrackWarning",
    "Repo",
    "Version",
    "__version__",
    "active_versions",
    "alias_history",
    "artifact_path",
    "autolog",
    "changelog",
    "diff",
    "evaluate",
    "filter_versions",
    "gc",
    "load",
    "models",
    "promote",
    "remove_alias",
    "resolve",
    "rollback",
    "set_alias",
    "set_notes",
    "show",
    "start",
    "tag",
    "verify",
    "versions",
]
