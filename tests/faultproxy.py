"""A fault-injecting TCP proxy for the S3 tests: sits between boto3 and the moto server and
misbehaves on command.

Modes (``proxy.mode = "…"``, switchable at any time from the test):

* ``pass``: forward both ways, byte for byte.
* ``blackhole``: accept connections and read what the client sends, never answer (the
  connections already open stop answering too). What a dead route or a hung server does.
* ``cut``: forward the request, then close the connection in the middle of the response.
* ``500``: answer every request with ``HTTP/1.1 500 InternalError`` (an S3 error document)
  without forwarding it.
* ``refuse``: stop listening, so connections are refused (open ones are closed).

Leaving ``refuse`` listens again on the same port. Every connection is served by one
thread that polls its sockets, so :meth:`close` ends them all within a fraction of a second.

Example:
    >>> with FaultProxy(("127.0.0.1", 9000)) as proxy:          # doctest: +SKIP
    ...     proxy.mode = "blackhole"
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any

MODES = ("pass", "blackhole", "cut", "500", "refuse")
_POLL = 0.05

ERROR_500 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again."
    b"</Message><RequestId>faultproxy</RequestId></Error>"
)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 (random port) to ``target`` with switchable faults.

    Args:
        target: ``(host, port)`` to forward to.
        mode: the initial mode (default ``pass``).
    """

    def __init__(self, target: tuple[str, int], mode: str = "pass") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.target = target
        self._mode = mode
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        #: connections accepted, per mode at the time they were accepted
        self.accepted: dict[str, int] = dict.fromkeys(MODES, 0)
        self._listen()
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._acceptor.start()

    # ------------------------------------------------------------------ control
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        with self._lock:
            old, self._mode = self._mode, mode
            if mode == "refuse" and old != "refuse":
                self._unlisten()
        if old == "refuse" and mode != "refuse":
            self._listen()
        if mode in ("refuse", "500") or (old == "blackhole" and mode != old):
            # Open connections go away (answers held back by the black hole with them);
            # new ones get the new behaviour.
            self._close_conns()

    def close(self) -> None:
        """Stop everything (returns within about a second)."""
        self._stop.set()
        with self._lock:
            self._unlisten()
        self._close_conns()
        for t in [self._acceptor, *list(self._threads)]:
            t.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ sockets
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:
            try:
                sock.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    sock.close()
                    raise
                time.sleep(0.05)
        sock.listen(128)
        sock.settimeout(_POLL)
        self.port = sock.getsockname()[1]
        with self._lock:
            self._listener = sock

    def _unlisten(self) -> None:
        """Close the listening socket (caller holds the lock)."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None

    def _close_conns(self) -> None:
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for s in conns:
            _close(s)

    def _track(self, s: socket.socket) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            self._conns.add(s)
            return True

    def _untrack(self, s: socket.socket) -> None:
        with self._lock:
            self._conns.discard(s)
        _close(s)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(_POLL)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                time.sleep(_POLL)  # closed for "refuse" or shutdown
                continue
            mode = self._mode
            self.accepted[mode] = self.accepted.get(mode, 0) + 1
            t = threading.Thread(target=self._serve, args=(client, mode), name="faultproxy-conn", daemon=True)
            with self._lock:
                self._threads = {x for x in self._threads if x.is_alive()}
                self._threads.add(t)
            t.start()

    # ------------------------------------------------------------------ one connection
    def _serve(self, client: socket.socket, mode: str) -> None:
        if not self._track(client):
            _close(client)
            return
        upstream: socket.socket | None = None
        try:
            client.settimeout(5)
            if mode == "refuse":
                return
            if mode == "blackhole":
                self._swallow(client)
            elif mode == "500":
                self._answer_500(client)
            else:
                upstream = socket.create_connection(self.target, timeout=5)
                if not self._track(upstream):
                    return
                self._relay(client, upstream)
        except OSError:
            pass  # a peer went away, or close() closed the socket under us
        finally:
            self._untrack(client)
            if upstream is not None:
                self._untrack(upstream)

    def _alive(self, s: socket.socket) -> bool:
        with self._lock:
            return not self._stop.is_set() and s in self._conns

    def _swallow(self, client: socket.socket) -> None:
        """Read and discard until the client gives up; never answer."""
        while self._alive(client):
            r, _, _ = select.select([client], [], [], _POLL)
            if r and not client.recv(65536):
                return

    def _answer_500(self, client: socket.socket) -> None:
        while self._alive(client):
            got = _read_head(client, self._alive)
            if got is None:
                return
            head, rest = got
            headers = _headers(head)
            if headers.get("expect", "").lower() != "100-continue":
                # Read the body, so that the client is not cut off while still sending it.
                if not _skip_body(client, headers, rest, self._alive):
                    return
            client.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                b"Content-Length: %d\r\nx-amz-request-id: faultproxy\r\nConnection: close\r\n\r\n%s"
                % (len(ERROR_500), ERROR_500)
            )
            return  # Connection: close

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        while self._alive(client) and self._alive(upstream):
            r, _, _ = select.select([client, upstream], [], [], _POLL)
            mode = self._mode
            if mode in ("refuse", "500"):
                return
            if mode == "blackhole":
                # The route died: what the client sends is lost, nothing comes back.
                if client in r and not client.recv(65536):
                    return
                continue
            for src in r:
                data = src.recv(65536)
                if not data:
                    return
                if src is client:
                    upstream.sendall(data)
                elif mode == "cut":
                    client.sendall(data[: max(1, len(data) // 2)])  # half an answer, then nothing
                    return
                else:
                    client.sendall(data)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


def _recv(s: socket.socket, alive: Any) -> bytes | None:
    """One chunk from ``s`` (None at EOF or when the proxy stops)."""
    while alive(s):
        r, _, _ = select.select([s], [], [], _POLL)
        if r:
            data = s.recv(65536)
            return data or None
    return None


def _read_head(s: socket.socket, alive: Any) -> tuple[bytes, bytes] | None:
    """The request line and headers, and what came after them; None if the client went away."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = _recv(s, alive)
        if data is None:
            return None
        buf += data
        if len(buf) > 1 << 20:
            return None
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        out[name.strip().lower()] = value.strip()
    return out


def _skip_body(s: socket.socket, headers: dict[str, str], got: bytes, alive: Any) -> bool:
    """Read the rest of the request body (Content-Length or chunked; ``got`` came with the
    headers); False if the client went away."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while b"0\r\n" not in got or not got.endswith(b"\r\n\r\n"):
            data = _recv(s, alive)
            if data is None:
                return False
            got += data
        return True
    left = int(headers.get("content-length") or 0) - len(got)
    while left > 0:
        data = _recv(s, alive)
        if data is None:
            return False
        left -= len(data)
    return True
