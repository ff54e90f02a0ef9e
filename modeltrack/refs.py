"""Model names, alias names and references (``NAME``, ``NAME@v3``, ``NAME@3``, ``NAME@alias``,
``NAME@latest``).

``NAME`` is the newest *finished* version; ``NAME@latest`` the newest version whatever its
status (running, failed, crashed), so that any run can be inspected by name.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

from .errors import ArtifactPathError, InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NUMBER = re.compile(r"[vV]?([0-9]+)")  # ASCII digits only (str.isdigit would take "²")
#: the longest version number a reference may spell (int() refuses over 4,300 digits; no
#: store holds 10**18 versions)
MAX_VERSION_DIGITS = 18
RESERVED_ALIASES = frozenset({"latest"})


def is_model_name(name: object) -> bool:
    """Whether ``name`` follows the naming rule of models and aliases."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidNameError``."""
    if not isinstance(name, str):
        raise InvalidNameError(
            f"a model name must be a string of 1-128 characters from A-Z a-z 0-9 . _ - "
            f"(e.g. 'churn-model'), got {_describe(name)}",
            name=name,
        )
    if not _NAME.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:60]) + "…"
        length = f" ({len(name)} characters)" if isinstance(name, str) and len(name) > 128 else ""
        raise InvalidNameError(
            f"invalid model name {shown}{length}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            f"starting with a letter or digit (e.g. 'churn-model')",
            name=name,
        )
    return name


def check_alias_name(name: object) -> str:
    """Return ``name`` if it can be an alias (not ``latest``, not a version number)."""
    if not isinstance(name, str):
        raise InvalidNameError(
            f"an alias must be a string of 1-128 characters from A-Z a-z 0-9 . _ - (e.g. 'production'), "
            f"got {_describe(name)}",
            name=name,
        )
    if not _NAME.fullmatch(name):
        shown = repr(name) if len(name) <= 60 else repr(name[:60]) + "…"
        raise InvalidNameError(
            f"invalid alias {shown}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            f"starting with a letter or digit (e.g. 'production')",
            name=name,
        )
    if name in RESERVED_ALIASES or _NUMBER.fullmatch(name):
        raise InvalidNameError(
            f"alias {name!r} is reserved: 'latest' and version numbers (3, v3) already mean "
            f"something in references; pick another name such as 'production'",
            name=name,
        )
    return name


def _describe(obj: object) -> str:
    """``int 42``: the type and a short repr of a value that should have been a string."""
    return f"{type(obj).__name__} {_shorten(obj)}"


def _shorten(obj: object, limit: int = 60) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + "…"


class Ref:
    """A parsed reference: ``version`` for ``@3``/``@v3``, ``alias`` for ``@name``,
    ``latest`` for ``@latest`` (the newest version whatever its status), none of them for
    the newest finished version."""

    __slots__ = ("alias", "latest", "model", "version")

    def __init__(
        self, model: str, version: int | None = None, alias: str | None = None, *, latest: bool = False
    ) -> None:
        self.model = model
        self.version = version
        self.alias = alias
        self.latest = latest

    def _key(self) -> tuple[str, int | None, str | None, bool]:
        return (self.model, self.version, self.alias, self.latest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        more = ", latest=True" if self.latest else ""
        return f"Ref(model={self.model!r}, version={self.version!r}, alias={self.alias!r}{more})"

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.model}@v{self.version}"
        if self.alias is not None:
            return f"{self.model}@{self.alias}"
        if self.latest:
            return f"{self.model}@latest"
        return self.model


def parse_ref(text: object) -> Ref:
    """Parse a reference string.

    Example:
        >>> parse_ref("churn@v3")
        Ref(model='churn', version=3, alias=None)
    """
    if not isinstance(text, str):
        raise InvalidNameError(f"a reference must be a string like 'churn@v3', got {_describe(text)}", name=text)
    model, sep, sel = text.partition("@")
    check_model_name(model)
    if not sep:
        return Ref(model)
    if sel == "":
        raise InvalidNameError(
            f"reference {text!r} ends with '@': write NAME, NAME@v3, NAME@3, NAME@latest or NAME@ALIAS",
            name=text,
        )
    if sel == "latest":
        return Ref(model, latest=True)
    m = _NUMBER.fullmatch(sel)
    if m:
        if len(m.group(1)) > MAX_VERSION_DIGITS:
            raise InvalidNameError(
                f"reference {_shorten(text)}: version number of {len(m.group(1))} digits is too long "
                f"(at most {MAX_VERSION_DIGITS}); write the version as shown by `modeltrack versions {model}`",
                name=text,
            )
        number = int(m.group(1))
        if number < 1:
            raise InvalidNameError(f"reference {text!r}: version numbers start at 1", name=text)
        return Ref(model, version=number)
    if not _NAME.fullmatch(sel):
        raise InvalidNameError(
            f"reference {_shorten(text)}: {_shorten(sel)} is neither a version (v3) nor a valid alias name",
            name=text,
        )
    return Ref(model, alias=sel)


def safe_artifact_path(name: str | os.PathLike[str]) -> str:
    """Validate a path inside a version: relative, no ``..``, no drive or backslash."""
    text = os.fspath(name)
    p = PurePosixPath(text)
    if (
        not text
        or text.startswith(("/", "\\"))
        or "\\" in text
        or ":" in text.split("/")[0]
        or any(part in ("..", ".", "") for part in text.split("/"))
        or p.is_absolute()
    ):
        raise ArtifactPathError(
            f"artifact path {text!r} would escape the version; use a relative path without '..' "
            f"(e.g. 'checkpoints/best.ckpt')",
            path=text,
        )
    return p.as_posix()
