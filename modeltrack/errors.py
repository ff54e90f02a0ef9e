"""Errors raised by modeltrack.

Every error derives from :class:`ModelTrackError`, and its message says what went wrong,
why, and how to fix it, in one line, so that the CLI can print it as is::

    ModelTrackError
    ├── InvalidNameError         a model or alias name breaks the naming rule
    ├── ReferenceError_          base of the "cannot resolve REF" family
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   └── AliasNotFoundError
    ├── InvalidValueError        a param, metric, tag or data value cannot be recorded
    │   ├── InvalidOptionError   an integration got an option it does not take (also a TypeError)
    │   ├── ParamConflictError
    │   ├── InvalidMetricError
    │   └── GuardMetricError     a promotion guard cannot compare (metric missing, direction unknown)
    ├── ArtifactPathError        an artifact path escapes its version
    ├── VersionStateError        e.g. logging into a finished version
    ├── PromotionRefusedError    a guarded promote found a worse metric (CLI exit status 3)
    │   └── VersionNotFinishedError  promote of a version that is not finished
    ├── UntrustedArtifactError   loading pickle/joblib without opt-in
    ├── MissingDependencyError   an optional package (pandas, shtab) is needed (also an ImportError)
    └── StoreError               the store cannot be used
        ├── StoreFormatError     written by a newer modeltrack
        ├── StoreNotFoundError   no store exists at that location (reads never create one)
        ├── StoreNotWritableError
        ├── CorruptRecordError   a record in the store is damaged
        └── StoreUnavailableError  a remote store cannot be reached
"""

from __future__ import annotations

from typing import Any


class ModelTrackError(Exception):
    """Root of every modeltrack error."""


class ModelTrackWarning(UserWarning):
    """Warned when tracking hits a problem it survives (training goes on)."""


class InvalidNameError(ModelTrackError, ValueError):
    """A model, alias or tag name breaks the naming rule."""

    def __init__(self, message: str, name: Any = None) -> None:
        super().__init__(message)
        self.name = name


class ReferenceError_(ModelTrackError, LookupError):
    """A reference (``NAME``, ``NAME@v3``, ``NAME@alias``) does not resolve."""

    def __init__(self, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref


class ModelNotFoundError(ReferenceError_):
    """No model of that name exists in the store."""


class VersionNotFoundError(ReferenceError_):
    """The model exists but not the version asked for."""


class AliasNotFoundError(ReferenceError_):
    """The model has no such alias."""


class InvalidValueError(ModelTrackError, ValueError):
    """A value cannot be recorded as asked."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.value = value


class InvalidOptionError(InvalidValueError, TypeError):
    """An integration (or ``autolog``) got an option it does not take."""


class ParamConflictError(InvalidValueError):
    """A param key was logged twice with different values."""


class InvalidMetricError(InvalidValueError):
    """A metric value is not a number."""


class ArtifactPathError(ModelTrackError, ValueError):
    """An artifact path would escape the version it belongs to."""

    def __init__(self, message: str, path: Any = None) -> None:
        super().__init__(message)
        self.path = path


class VersionStateError(ModelTrackError):
    """The version is not in a state that allows this operation."""


class GuardMetricError(InvalidValueError):
    """A promotion guard cannot compare: a version lacks the metric, or which direction is
    better is unknown."""


class PromotionRefusedError(ModelTrackError):
    """A guarded promotion found the candidate worse than the current holder (the CLI
    exits 3). ``guard`` says what was compared: ``{"metric", "goal", "compare",
    "candidate": {"version", "value"}, "holder": {"version", "value"}}``."""

    def __init__(self, message: str, guard: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.guard = guard


class VersionNotFinishedError(PromotionRefusedError):
    """``promote`` of a version that is running, failed or crashed (without ``force``)."""

    def __init__(self, message: str, ref: str | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref
        self.status = status


class UntrustedArtifactError(ModelTrackError):
    """Loading an artifact that can execute code needs an explicit opt-in."""


class MissingDependencyError(ModelTrackError, ImportError):
    """An optional package is needed for this call; the message names the ``pip install``."""


class StoreError(ModelTrackError):
    """The store cannot be used as asked."""

    def __init__(self, message: str, uri: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri


class StoreFormatError(StoreError):
    """The store was written by a newer modeltrack (or is not a store)."""


class StoreNotFoundError(StoreError):
    """No modeltrack store exists where a read looked (reads never create one)."""


class StoreNotWritableError(StoreError):
    """The store refuses writes (read-only, full, or no permission)."""


class CorruptRecordError(StoreError):
    """A record in the store is damaged (truncated or not JSON)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class StoreUnavailableError(StoreError):
    """A remote store could not be reached."""


class KeyNotFound(StoreError, KeyError):
    """Internal: a key is absent from the store (callers translate it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "key not found"
