"""The S3 store on a real S3-compatible server (moto on 127.0.0.1): what the contract tests
do not cover — conditional writes, pagination, the spool, sync/status, push/pull, errors."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

import botocore.exceptions

import modeltrack as mt
from modeltrack.cli import main
from modeltrack.errors import StoreError, StoreNotWritableError, StoreUnavailableError
from modeltrack.stores import open_store
from modeltrack.stores.s3 import S3Store
from modeltrack.stores.spool import OP_PUT, OP_WRITE, Op, Queue, Spool


def bucket_and_prefix(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


def objects(server: Any, uri: str) -> list[str]:
    bucket, prefix = bucket_and_prefix(uri)
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"][len(prefix) + 1 :] for p in pages for o in p.get("Contents") or [])


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("modeltrack: error: ")
    return lines[0]


# ---------------------------------------------------------------------- the server and the store
def test_server_answers_412_to_if_none_match_on_an_existing_key(s3_server: Any) -> None:
    bucket, prefix = bucket_and_prefix(s3_server.new_store_uri())
    c = s3_server.client()
    c.put_object(Bucket=bucket, Key=f"{prefix}/k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        c.put_object(Bucket=bucket, Key=f"{prefix}/k", Body=b"2", IfNoneMatch="*")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"


def test_list_follows_pagination(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(s3_server.new_store_uri())
    for i in range(7):
        store.write(f"m/v/{i}/a", b"x")
        store.write(f"m/f{i}", b"x")
    calls: list[dict[str, Any]] = []
    paginator = store.client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
    real = paginator.paginate

    def small_pages(**kw: Any) -> Any:
        calls.append(kw)
        return real(**kw, PaginationConfig={"PageSize": 2})

    monkeypatch.setattr(paginator, "paginate", small_pages)
    monkeypatch.setattr(store.client, "get_paginator", lambda name: paginator)  # type: ignore[attr-defined]
    assert store.list("m") == sorted([f"f{i}" for i in range(7)] + ["v"])
    assert store.list("m/v") == [str(i) for i in range(7)]
    assert len(list(store.walk("m"))) == 14
    assert calls and all(c.get("Delimiter") == "/" for c in calls[:2])


def test_put_file_with_known_hash_is_multipart_straight_to_its_key(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_S3_PART_SIZE", "5")
    uri = s3_server.new_store_uri()
    store = open_store(uri)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(11 * 1024 * 1024))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    sent: list[int] = []
    store.put_file("blobs/big", src, sha256=sha, progress=sent.append)
    bucket, prefix = bucket_and_prefix(uri)
    head = s3_server.client().head_object(Bucket=bucket, Key=f"{prefix}/blobs/big", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert head["Metadata"]["sha256"] == sha and "ChecksumCRC32" in head  # every part checked by the server
    assert sum(sent) == src.stat().st_size
    assert store.sha256("blobs/big") == sha
    assert objects(s3_server, uri) == ["blobs/big"]


def test_put_file_hashes_while_uploading_and_leaves_no_staging_object(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a known hash the file goes up once (hashed on the way) to a staging key, is
    copied server-side to its key with the hash, and the staging object is removed."""
    monkeypatch.setenv("MODELTRACK_S3_PART_SIZE", "5")
    uri = s3_server.new_store_uri()
    store = open_store(uri)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(11 * 1024 * 1024))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    reads: list[int] = []
    real_open = open

    def counting_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(src):
            reads.append(1)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    sent: list[int] = []
    store.put_file("blobs/big", src, progress=sent.append)
    monkeypatch.undo()
    assert len(reads) == 1  # one pass over the file: no hashing before, no reading back after
    assert store.head("blobs/big") == {"size": src.stat().st_size, "sha256": sha}
    assert sum(sent) == src.stat().st_size
    assert store.sha256("blobs/big") == sha
    assert objects(s3_server, uri) == ["blobs/big"]
    bucket, prefix = bucket_and_prefix(uri)
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_a_content_addressed_key_goes_up_once_and_only_if_it_matches(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_S3_PART_SIZE", "5")
    uri = s3_server.new_store_uri()
    store = S3Store.from_uri(uri)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(11 * 1024 * 1024))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    copies: list[Any] = []
    monkeypatch.setattr(store.transfer_client, "copy_object", lambda **kw: copies.append(kw))
    store.put_file(f"blobs/sha256/{sha[:2]}/{sha}", src)
    assert not copies  # no staging, no server-side copy
    assert store.head(f"blobs/sha256/{sha[:2]}/{sha}") == {"size": src.stat().st_size, "sha256": sha}
    wrong = "0" * 64
    with pytest.raises(StoreError, match="does not hash to the name"):
        store.put_file(f"blobs/sha256/00/{wrong}", src)
    bucket, prefix = bucket_and_prefix(uri)
    assert objects(s3_server, uri) == [f"blobs/sha256/{sha[:2]}/{sha}"]
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_a_failed_part_aborts_the_upload_and_publishes_nothing(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_S3_PART_SIZE", "5")
    uri = s3_server.new_store_uri()
    store = S3Store.from_uri(uri)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(16 * 1024 * 1024))
    client = store.transfer_client
    real = client.upload_part

    def failing(**kwargs: Any) -> Any:
        if kwargs["PartNumber"] == 2:
            raise botocore.exceptions.ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart")
        return real(**kwargs)

    monkeypatch.setattr(client, "upload_part", failing)
    for sha in (None, hashlib.sha256(src.read_bytes()).hexdigest()):
        with pytest.raises(StoreUnavailableError):
            store.put_file("blobs/big", src, sha256=sha)
    monkeypatch.undo()
    bucket, prefix = bucket_and_prefix(uri)
    assert objects(s3_server, uri) == []
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_abort_stale_uploads(s3_server: Any) -> None:
    uri = s3_server.new_store_uri()
    store = S3Store.from_uri(uri)
    bucket, prefix = bucket_and_prefix(uri)
    s3_server.client().create_multipart_upload(Bucket=bucket, Key=f"{prefix}/blobs/left")
    # (moto reports every upload as started in 2010, so only the abort itself is checked here)
    assert store.abort_stale_uploads(older_than=-60) == 1
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_check_writable_writes_nothing(s3_server: Any) -> None:
    uri = s3_server.new_store_uri()
    open_store(uri).check_writable()
    bucket, prefix = bucket_and_prefix(uri)
    assert objects(s3_server, uri) == []
    uploads = s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads") or []
    assert uploads == []


def test_uri_forms(s3_server: Any) -> None:
    s = S3Store.from_uri("s3://some-bucket/a/b/")
    assert (s.bucket, s.prefix, s.uri) == ("some-bucket", "a/b", "s3://some-bucket/a/b")
    with pytest.raises(StoreError, match="credentials in the store URI"):
        open_store("s3://KEY:SECRET@bucket/x")
    with pytest.raises(StoreError, match="not a valid bucket name"):
        open_store("s3://Bad_Bucket/x")
    with pytest.raises(StoreError, match="invalid prefix"):
        open_store("s3://bucket/a/../b")


# ---------------------------------------------------------------------- tracking through the spool
def test_tracking_on_s3_end_to_end(s3_server: Any, tmp_path: Path) -> None:
    uri = s3_server.new_store_uri()
    ckpt = tmp_path / "model.bin"
    with mt.start("churn", params={"lr": 0.1}, store=uri) as v:
        for epoch in range(3):
            v.log_metrics({"loss": 1.0 / (epoch + 1)}, epoch=epoch)
            ckpt.write_bytes(f"weights {epoch}".encode() * 1000)
            v.log_artifact(ckpt, kind="checkpoint", name=f"ckpt/{epoch}.bin", epoch=epoch)
    rec = mt.show("churn@v1", store=uri)
    assert rec["status"] == "finished" and rec["params"] == {"lr": 0.1}
    assert [p["value"] for p in rec["metrics"]["loss"]["series"]] == [1.0, 0.5, 1.0 / 3]
    assert len(rec["artifacts"]) == 3
    assert mt.verify(store=uri)["ok"]
    got = mt.artifact_path("churn@v1", "ckpt/1.bin", store=uri)  # downloaded into the cache
    assert Path(got).read_bytes() == b"weights 1" * 1000
    keys = objects(s3_server, uri)
    assert not any("/metrics/" in k for k in keys)  # chunks consolidated into series.json
    assert Spool().status() == []  # nothing left pending, queue removed
    assert not any(p.is_dir() for d in Spool().root.glob("*") for p in d.iterdir())
    # No credential ever reaches the store.
    blob = b"".join(open_store(uri).read(k) for k in keys if k.endswith(".json"))
    assert b"modeltrack-test-secret" not in blob


def test_outage_mid_run_training_goes_on_and_uploads_later(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_UPLOAD_TIMEOUT", "0.5")
    monkeypatch.setenv("MODELTRACK_UPLOAD_BACKOFF_MAX", "0.5")
    uri = s3_server.new_store_uri()
    ckpt = tmp_path / "c.bin"
    v = mt.start("m", store=uri)
    v.log_metrics({"loss": 1.0}, epoch=0)
    s3_server.stop()
    try:
        for epoch in range(1, 4):
            v.log_metrics({"loss": 1.0 / (epoch + 1)}, epoch=epoch)
            ckpt.write_bytes(os.urandom(1000))
            v.log_artifact(ckpt, kind="checkpoint", name=f"c{epoch}.bin", epoch=epoch)
        with pytest.warns(mt.ModelTrackWarning, match="still pending"):
            v.finish()
        pending = Spool().status(uri)
        assert pending and pending[0]["versions"] == ["m@v1"] and pending[0]["uploading"]
    finally:
        s3_server.start()
    assert v.store.drain(30)  # the background uploader retried and got through
    rec = mt.show("m@v1", store=uri)
    assert rec["status"] == "finished"
    assert [p["epoch"] for p in rec["metrics"]["loss"]["series"]] == [0, 1, 2, 3]
    assert len(rec["artifacts"]) == 3 and mt.verify(store=uri)["ok"]


def test_start_with_server_down_is_a_clear_error(s3_server: Any) -> None:
    uri = s3_server.new_store_uri()
    s3_server.stop()
    try:
        with pytest.raises(StoreUnavailableError, match="cannot reach http://127.0.0.1"):
            mt.start("m", store=uri)
    finally:
        s3_server.start()


def test_sync_uploads_a_dead_process_queue_and_status_lists_it(
    s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = s3_server.new_store_uri()
    open_store(uri).check_writable()
    spool = Spool()
    q = Queue.create(spool.store_dir(uri, create=True))
    src = tmp_path / "blob"
    src.write_bytes(b"payload" * 100)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    q.add(Op(1, OP_PUT, f"blobs/sha256/{sha[:2]}/{sha}"), src=src)
    q.add(Op(2, OP_WRITE, "models/m/versions/1/records/000001.json"), data=b"[]")
    q.unlock()  # the owner died: its lock is gone
    rc, out, _ = run_cli(capsys, "status")
    assert rc == 0 and "m@v1" in out and "2 operations" in out and "run `modeltrack sync`" in out
    rc, out, _ = run_cli(capsys, "status", "--json")
    assert json.loads(out)[0]["operations"] == 2
    rc, out, _ = run_cli(capsys, "sync")
    assert rc == 0 and f"{uri}: uploaded 2 operations" in out and "nothing pending" in out
    assert objects(s3_server, uri) == [f"blobs/sha256/{sha[:2]}/{sha}", "models/m/versions/1/records/000001.json"]
    rc, out, _ = run_cli(capsys, "sync")  # idempotent
    assert rc == 0 and ("nothing to sync" in out or "uploaded 0 operations" in out)
    rc, out, _ = run_cli(capsys, "status")
    assert "nothing pending" in out


def test_sync_leaves_queues_of_live_processes_alone(s3_server: Any) -> None:
    uri = s3_server.new_store_uri()
    spool = Spool()
    q = Queue.create(spool.store_dir(uri, create=True))  # held by this (live) process
    q.add(Op(1, OP_WRITE, "x/y"), data=b"1")
    res = spool.sync(open_store(uri))
    assert res["uploaded"] == 0 and res["skipped_queues"] == [q.name] and res["pending"] == 1
    q.destroy()


# ---------------------------------------------------------------------- push and pull
def make_versions(store: str, tmp_path: Path, n: int, model: str = "m") -> None:
    f = tmp_path / "weights.bin"
    for i in range(n):
        f.write_bytes(f"weights of {model} {i}".encode())
        with mt.start(model, store=store, params={"i": i}) as v:
            v.log_metrics({"loss": 1.0 / (i + 1)}, epoch=0)
            v.log_artifact(f, kind="model")
            v.log_artifact(tmp_path / "shared.bin", kind="artifact") if (tmp_path / "shared.bin").exists() else None
            v.set_tags(origin="local")


def test_push_and_pull_between_local_and_s3(s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = str(tmp_path / "local")
    (tmp_path / "shared.bin").write_bytes(b"same in every version" * 100)
    make_versions(local, tmp_path, 3)
    remote = s3_server.new_store_uri()
    rc, out, err = run_cli(capsys, "--store", local, "push", "m@v2", remote)
    assert rc == 0, err
    assert f"pushed m@v2 -> {remote} as m@v2" in out and "2 blobs copied" in out
    rc, out, _ = run_cli(capsys, "--store", local, "push", "--all", remote)
    assert rc == 0
    assert "m@v2 is already in" in out and "1 already there" in out  # the shared blob was not sent again
    rec = mt.show("m@v2", store=remote)
    assert rec["status"] == "finished" and rec["params"] == {"i": 1} and rec["tags"] == {"origin": "local"}
    assert rec["source"]["store"] == local and rec["source"]["model"] == "m" and rec["source"]["version"] == 2
    assert [r["version"] for r in mt.versions("m", store=remote)] == [1, 2, 3]
    assert mt.verify(store=remote)["ok"]

    # Pull into another local store, where m@v1 is already a different version.
    other = str(tmp_path / "other")
    make_versions(other, tmp_path, 1)
    rc, _, err = run_cli(capsys, "--store", other, "pull", remote, "m@v1")
    assert rc == 1 and "already has a different m@v1" in error_line(err) and "--renumber" in err
    rc, out, err = run_cli(capsys, "--store", other, "pull", remote, "m@v1", "--renumber")
    assert rc == 0, err
    assert "as m@v2" in out
    rc, out, _ = run_cli(capsys, "--store", other, "pull", remote, "m@v1", "--renumber")
    assert "already in" in out and "(as v2)" in out  # found again, not copied twice
    pulled = mt.show("m@v2", store=other)
    assert pulled["params"] == {"i": 0} and pulled["source"]["store"] == remote
    assert pulled["artifacts"] == mt.show("m@v1", store=local)["artifacts"]
    assert mt.verify(store=other)["ok"]


def test_push_refuses_a_running_version(s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = str(tmp_path / "local")
    v = mt.start("m", store=local)
    try:
        rc, _, err = run_cli(capsys, "--store", local, "push", "m@v1", s3_server.new_store_uri())
        assert rc == 1 and "still running" in error_line(err)
    finally:
        v.finish()


# ---------------------------------------------------------------------- bad input
def test_missing_bucket_and_unknown_scheme_one_line_nothing_written(
    s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/team"
    rc, _, err = run_cli(capsys, "--store", missing, "models")
    line = error_line(err)
    assert rc == 1 and "bucket 'no-such-bucket-" in line and "does not exist" in line and "aws s3 mb" in line
    with pytest.raises(StoreError, match="does not exist"):
        mt.start("m", store=missing)
    local = str(tmp_path / "local")
    make_versions(local, tmp_path, 1)
    rc, _, err = run_cli(capsys, "--store", local, "push", "m@v1", missing)
    assert rc == 1 and "does not exist" in error_line(err)
    names = [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
    assert not any(n.startswith("no-such-bucket") for n in names)
    rc, _, err = run_cli(capsys, "--store", "ftp://host/x", "models")
    assert rc == 1 and "unknown store scheme 'ftp'" in error_line(err)


@pytest.fixture(scope="module")
def auth_server() -> Any:
    """A second moto server with IAM authentication on: a writer, and a reader that may
    write only under ``writable/``."""
    from s3server import S3Server

    server = S3Server().launch()
    try:
        iam = _iam_client(server)
        server.create_bucket("mt-auth")
        users: dict[str, tuple[str, str]] = {}
        policies = {
            "writer": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            "reader": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetObject"],
                    "Resource": ["arn:aws:s3:::mt-auth", "arn:aws:s3:::mt-auth/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
                    "Resource": ["arn:aws:s3:::mt-auth/writable/*"],
                },
            ],
        }
        for name, statements in policies.items():
            iam.create_user(UserName=name)
            iam.put_user_policy(
                UserName=name,
                PolicyName="p",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = (key["AccessKeyId"], key["SecretAccessKey"])
        server.enable_auth()
        server.users = users
        yield server
    finally:
        server.shutdown()


def _iam_client(server: Any) -> Any:
    import boto3

    return boto3.session.Session().client(
        "iam",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )


def use_user(monkeypatch: pytest.MonkeyPatch, server: Any, key: str, secret: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def auth_objects(server: Any) -> list[str]:
    key, secret = server.users["writer"]
    c = server.client(key=key, secret=secret)
    return sorted(o["Key"] for o in c.list_objects_v2(Bucket="mt-auth").get("Contents") or [])


def test_wrong_credentials_one_line_nothing_written(
    auth_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    use_user(monkeypatch, auth_server, "AKIAWRONGWRONGWRONG0", "nope")
    rc, _, err = run_cli(capsys, "--store", "s3://mt-auth/team", "models")
    line = error_line(err)
    assert rc == 1 and "rejected the AWS credentials" in line and "InvalidAccessKeyId" in line
    assert "nope" not in line  # the secret is never printed
    with pytest.raises(StoreError, match="rejected the AWS credentials"):
        mt.start("m", store="s3://mt-auth/team")
    key, _ = auth_server.users["writer"]
    use_user(monkeypatch, auth_server, key, "not-the-secret")
    rc, _, err = run_cli(capsys, "--store", "s3://mt-auth/team", "models")
    assert rc == 1 and "SignatureDoesNotMatch" in error_line(err)
    assert auth_objects(auth_server) == []


def test_prefix_the_user_cannot_write(
    auth_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    local = str(tmp_path / "local")
    make_versions(local, tmp_path, 1)
    use_user(monkeypatch, auth_server, *auth_server.users["reader"])
    with pytest.raises(StoreNotWritableError, match="access denied writing"):
        mt.start("m", store="s3://mt-auth/readonly")
    rc, _, err = run_cli(capsys, "--store", local, "push", "m@v1", "s3://mt-auth/readonly")
    line = error_line(err)
    assert rc == 1 and "access denied writing" in line and "s3:PutObject" in line
    assert auth_objects(auth_server) == []
    # The same user may write where the policy allows it.
    with mt.start("m", store="s3://mt-auth/writable") as v:
        v.log_metrics({"loss": 0.5}, epoch=0)
    assert mt.show("m@v1", store="s3://mt-auth/writable")["status"] == "finished"


def test_server_ignoring_conditional_writes_is_refused(s3_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """An old S3-compatible server that ignores If-None-Match would number versions twice:
    simulated by dropping the header on the way to the real server."""
    from modeltrack.errors import StoreError
    from modeltrack.stores import open_store, s3

    uri = s3_server.new_store_uri()
    store = open_store(uri)
    monkeypatch.setattr(s3, "_CONDITIONAL_CHECKED", set())
    real = store.client.put_object

    def without_condition(**kw):  # type: ignore[no-untyped-def]
        kw.pop("IfNoneMatch", None)
        return real(**kw)

    monkeypatch.setattr(store.client, "put_object", without_condition)
    with pytest.raises(StoreError, match="ignores conditional writes"):
        store.create("models/m/versions/1/claim.json", b"{}")
    assert not store.exists("models/m/versions/1/claim.json")
    assert list(store.walk("blobs")) == []


def test_gc_removes_a_staging_object_a_killed_upload_left(s3_server: Any) -> None:
    uri = s3_server.new_store_uri()
    mt.start("m", store=uri).finish()
    store = open_store(uri)
    store.write("blobs/staging/0123abcd", b"half a copy")  # what a process killed mid-copy leaves
    assert mt.gc(store=uri, grace_seconds=3600)["deleted_blobs"] == 0  # young: kept for its grace period
    assert store.exists("blobs/staging/0123abcd")
    mt.gc(store=uri, grace_seconds=0)
    assert not store.exists("blobs/staging/0123abcd")
    assert mt.verify(store=uri)["ok"]


def test_sync_removes_what_a_killed_writer_held_in_the_spool(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version killed while its writer held a logged checkpoint leaves a hard link in the
    spool (it keeps the checkpoint's disk space even after the user deletes the file);
    ``sync`` removes such files once they are old, never a queued operation's data."""
    import signal
    import subprocess
    import sys

    from modeltrack.stores import spool as spool_mod

    uri = s3_server.new_store_uri()
    ckpt = tmp_path / "big.ckpt"
    ckpt.write_bytes(os.urandom(1 << 20))
    code = (
        "import os, modeltrack as mt\n"
        "from modeltrack import tracking\n"
        f"v = mt.start('m', store={uri!r})\n"
        "tracking.Version._work_artifacts = lambda self: None\n"  # the writer never gets to it
        f"v.log_artifact({str(ckpt)!r}, kind='checkpoint')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    ).replace("import os,", "import os, signal,")
    env = {k: v for k, v in os.environ.items() if k != "MODELTRACK_STRICT"}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == -signal.SIGKILL
    root = Spool().root
    held = [p for p in root.rglob(".*.tmp") if p.stat().st_ino == ckpt.stat().st_ino]
    assert held, "the killed writer held the checkpoint in the spool"
    store = open_store(uri)
    assert Spool().sync(store)["removed_temporaries"] == 0  # young: a live writer may hold it
    assert all(p.exists() for p in held)
    monkeypatch.setattr(spool_mod, "STALE_TEMPORARY_SECONDS", -60.0)  # as if an hour went by
    res = Spool().sync(store)
    assert res["removed_temporaries"] >= len(held) and not any(p.exists() for p in held)
    assert ckpt.stat().st_nlink == 1 and ckpt.stat().st_size == 1 << 20
    assert Spool().status(uri) == [] and mt.versions("m", store=uri)[0]["version"] == 1
