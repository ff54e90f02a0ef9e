"""A one-line upload progress report on stderr, for ``finish()`` waiting on a remote store."""

from __future__ import annotations

import sys
import time

#: uploads smaller than this are not worth a progress line
MIN_BYTES = 16 * 1024 * 1024


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class UploadProgress:
    """A :class:`~modeltrack.stores.base.Progress` that draws a bar on a terminal (redrawn in
    place) and two lines elsewhere: the start and the outcome. Small uploads are silent."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._tty: bool | None = None  # asked on the first upload big enough to show
        self._last = 0.0
        self._shown = False

    @property
    def tty(self) -> bool:
        """Whether standard error is a terminal (the bar is redrawn in place)."""
        if self._tty is None:
            try:
                self._tty = sys.stderr.isatty()
            except (AttributeError, ValueError):  # replaced or closed stderr
                self._tty = False
        return self._tty

    def __call__(self, sent: int, total: int, finished: bool | None) -> None:
        if total < MIN_BYTES:
            return
        if not self._shown:
            self._shown = True
            sys.stderr.write(f"modeltrack: uploading {_mb(total)} to {self.uri}{'' if self.tty else ' …'}\n")
        if finished is None:
            if self.tty and time.monotonic() - self._last >= 0.2:
                self._last = time.monotonic()
                self._bar(sent, total)
            return
        if self.tty:
            self._bar(sent, total)
            sys.stderr.write("\n")
        sys.stderr.write(f"modeltrack: {'upload done' if finished else 'upload incomplete'}: {_mb(sent)} sent\n")
        sys.stderr.flush()

    @staticmethod
    def _bar(sent: int, total: int) -> None:
        frac = min(sent / max(total, 1), 1.0)
        sys.stderr.write(f"\r  [{'#' * int(frac * 30):<30}] {frac:4.0%} {_mb(sent)} / {_mb(total)}")
        sys.stderr.flush()


__all__ = ["MIN_BYTES", "UploadProgress"]
