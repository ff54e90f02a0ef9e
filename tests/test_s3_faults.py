"""Fault injection on the S3 store: an outage in the middle of a real Lightning run, and a
training process killed while an upload is in flight. Then ``modeltrack sync``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

import modeltrack as mt
from modeltrack.cli import main
from modeltrack.stores.spool import Spool

LIGHTNING_RUN = textwrap.dedent(
    """
    import glob, hashlib, json, os, sys
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from modeltrack.integrations.lightning import ModelTrackCallback

    class Net(pl.LightningModule):
        def __init__(self, lr=0.05):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class PauseAfterEpoch1(Callback):
        # Lets the test stop the S3 server at a known point of the run.
        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == 1:
                print("paused", flush=True)
                sys.stdin.readline()

    store, ckdir = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    track = ModelTrackCallback(model="lit", store=store, checkpoints="all")
    trainer = pl.Trainer(
        max_epochs=5, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=ckdir, every_n_epochs=1, save_top_k=-1), PauseAfterEpoch1(), track],
    )
    trainer.fit(Net(), data, data)
    shas = sorted({hashlib.sha256(open(p, "rb").read()).hexdigest() for p in glob.glob(os.path.join(ckdir, "*.ckpt"))})
    print("RESULT " + json.dumps({"ref": track.version.ref, "status": track.version.status, "shas": shas}), flush=True)
    """
)


def read_until(stream: Any, prefix: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError(f"child ended before printing {prefix!r}")
        if line.startswith(prefix):
            return str(line)
    raise AssertionError(f"no {prefix!r} within {timeout} s")


@pytest.mark.slow
def test_outage_in_the_middle_of_a_lightning_run(
    s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("lightning")
    pytest.importorskip("modeltrack.integrations.lightning")
    uri = s3_server.new_store_uri()
    env = {**os.environ, "MODELTRACK_UPLOAD_TIMEOUT": "1", "MODELTRACK_UPLOAD_BACKOFF_MAX": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", LIGHTNING_RUN, uri, str(tmp_path / "ckpt")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        read_until(child.stdout, "paused")
        s3_server.stop()  # the server goes away in the middle of the run
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(read_until(child.stdout, "RESULT ")[len("RESULT ") :])
        _, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        s3_server.start()
    assert child.returncode == 0, err  # training completed
    assert result["status"] == "finished" and result["ref"] == "lit@v1"
    assert "still pending" in err  # finish() gave up waiting, leaving the rest to sync

    pending = Spool().status(uri)
    assert len(pending) == 1 and pending[0]["versions"] == ["lit@v1"] and not pending[0]["uploading"]
    # final.json goes last: until the spool is uploaded, readers never see a finished
    # version with parts missing.
    assert mt.show("lit@v1", store=uri)["status"] == "crashed"

    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    assert f"{uri}: uploaded" in out and "nothing pending" in out
    rec = mt.show("lit@v1", store=uri)
    assert rec["status"] == "finished"
    for name in ("train_loss", "val_loss"):
        assert [p["epoch"] for p in rec["metrics"][name]["series"]] == [0, 1, 2, 3, 4], name
    stored = {a["sha256"] for a in rec["artifacts"] if a["kind"] == "checkpoint"}
    assert set(result["shas"]) <= stored and len(result["shas"]) >= 5
    check = mt.verify(store=uri)  # downloads every blob and hashes it
    assert check["ok"] and check["artifacts_checked"] >= len(result["shas"])
    assert Spool().status(uri) == []


KILLED_RUN = textwrap.dedent(
    """
    import sys, time, modeltrack as mt
    v = mt.start("big", store=sys.argv[1])
    v.log_metrics({"loss": 1.0}, epoch=0)
    v.log_artifact(sys.argv[2], kind="checkpoint", epoch=0)
    v.log_metrics({"loss": 0.5}, epoch=1)
    v.log_metrics({"loss": 0.25}, epoch=2)
    print("logged", flush=True)
    time.sleep(300)
    """
)


@pytest.mark.slow
def test_sigkill_while_an_upload_is_in_flight(
    s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = s3_server.new_store_uri()
    bucket, prefix = uri[5:].split("/", 1)
    ckpt = tmp_path / "big.ckpt"
    ckpt.write_bytes(os.urandom(100 * 1024 * 1024))
    sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    # Twenty parts, one at a time: an upload that stays in flight long enough to be seen.
    env = {**os.environ, "MODELTRACK_S3_PART_SIZE": "5", "MODELTRACK_S3_CONCURRENCY": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, uri, str(ckpt)], stdout=subprocess.PIPE, text=True, env=env
    )
    client = s3_server.client()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads") or []
            if any(u["Key"].endswith(sha) for u in uploads):
                break
            time.sleep(0.01)
        else:
            raise AssertionError("no multipart upload seen in flight")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") or []]
    assert not any(sha in k for k in keys)  # the half-sent checkpoint is invisible
    rec = mt.show("big@v1", store=uri)  # readable
    assert rec["status"] == "crashed"
    assert rec["artifacts"] == []  # its record waits behind the blob in the spool
    assert mt.verify(store=uri)["ok"]

    assert Spool().status(uri)[0]["versions"] == ["big@v1"]
    assert main(["--store", uri, "sync"]) == 0
    assert "nothing pending" in capsys.readouterr().out
    rec = mt.show("big@v1", store=uri)
    assert rec["status"] == "crashed"
    assert [a["sha256"] for a in rec["artifacts"]] == [sha]
    assert [p["value"] for p in rec["metrics"]["loss"]["series"]][:2] == [1.0, 0.5]
    assert mt.verify(store=uri)["ok"]
