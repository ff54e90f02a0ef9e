"""A real S3-compatible server on 127.0.0.1 for the tests: moto's server, in a child process.

``python -m moto.server`` keeps its buckets in memory, so stopping it loses them. The child
started here runs the same moto application, but can close its listening socket and open
it again on the same port while the buckets stay in memory: to clients that is an outage
and a recovery (connections refused, then answered again), which the fault-injection
tests need. Commands arrive on stdin (``stop``, ``start``, ``quit``); the child answers
``ok`` on stdout.

Run ``python tests/s3server.py PORT`` by hand to get the same server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCESS_KEY = "modeltrack-test"
SECRET_KEY = "modeltrack-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """Controls the moto child process. Used by the ``s3_server`` fixture.

    Args:
        port: TCP port on 127.0.0.1 (default: a free one).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.buckets: list[str] = []
        #: IAM users made for an authenticating server: name -> (access key, secret)
        self.users: dict[str, tuple[str, str]] = {}

    # ------------------------------------------------------------------ process
    def launch(self) -> S3Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._expect("ok")
        return self

    def _expect(self, want: str) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != want:
            raise RuntimeError(f"moto server on port {self.port} said {line!r}, expected {want!r}")

    def _command(self, cmd: str) -> None:
        with self._lock:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
            self._expect("ok")

    def stop(self) -> None:
        """Close the listening socket: new connections are refused; buckets are kept."""
        self._command("stop")

    def start(self) -> None:
        """Listen again on the same port."""
        self._command("start")

    def shutdown(self) -> None:
        if self.proc is None:
            return
        try:
            self._command("quit")
        except (OSError, RuntimeError, AssertionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    # ------------------------------------------------------------------ clients and buckets
    def env(self) -> dict[str, str]:
        """The AWS settings that point boto3 at this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self, **creds: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=creds.get("key", ACCESS_KEY),
            aws_secret_access_key=creds.get("secret", SECRET_KEY),
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"mt-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def new_store_uri(self) -> str:
        """A fresh, empty ``s3://bucket/prefix`` store on this server."""
        if not self.buckets:
            self.create_bucket()
        return f"s3://{self.buckets[0]}/t-{uuid.uuid4().hex[:12]}"

    def enable_auth(self) -> None:
        """From now on every request needs the signature of a known IAM user (moto's IAM
        simulation, with its user policies)."""
        import urllib.request

        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


# ---------------------------------------------------------------------- the child process
def _serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    server: Any = None
    thread: threading.Thread | None = None

    def start() -> None:
        nonlocal server, thread
        for _ in range(100):
            try:
                server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"port {port} stays busy")
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

    def stop() -> None:
        nonlocal server, thread
        if server is not None:
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join()
            server = thread = None

    start()
    print("ok", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stop":
            stop()
        elif cmd == "start":
            if server is None:
                start()
        elif cmd == "quit":
            stop()
            print("ok", flush=True)
            return
        print("ok", flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
