"""Credentials never reach the store: command lines, URLs and the environment are masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.capture import env as capture_env
from modeltrack.secrets import is_secret_name, mask_argv, scrub_text, scrub_value

ROOT = Path(__file__).resolve().parents[1]

#: (command line, what mask_argv must make of it)
ARGV_CASES = [
    (["--db-pass", "hunter2"], ["--db-pass", "***"]),
    (["--db-pass=hunter2"], ["--db-pass=***"]),
    (["--pass", "hunter2", "--lr", "0.1"], ["--pass", "***", "--lr", "0.1"]),
    (["--passphrase=open sesame"], ["--passphrase=***"]),
    (["--bearer", "abc"], ["--bearer", "***"]),
    (["--sig", "f00d", "--sig=f00d"], ["--sig", "***", "--sig=***"]),
    (
        ["--api-key", "k", "--hf_token", "t", "--client-secret", "s"],
        ["--api-key", "***", "--hf_token", "***", "--client-secret", "***"],
    ),
    (
        ["--auth", "a", "--credentials", "c", "--cookie", "c", "--session-id", "s"],
        ["--auth", "***", "--credentials", "***", "--cookie", "***", "--session-id", "***"],
    ),
    (["--pwd", "x", "--DB_PASSWORD", "x"], ["--pwd", "***", "--DB_PASSWORD", "***"]),
    (["-p", "s3cret"], ["-p", "***"]),
    (["-p=s3cret"], ["-p=***"]),
    (["-ps3cret"], ["-p***"]),
    (["-password", "s3cret"], ["-p***", "***"]),
    # a flag with no value: the next option is not swallowed
    (["--use-auth", "--lr", "0.1"], ["--use-auth", "--lr", "0.1"]),
    (["--token", "--", "train.py"], ["--token", "--", "train.py"]),
    # URL credentials, in any argument
    (["--url", "https://bob:hunter2@db.example/x"], ["--url", "https://bob:***@db.example/x"]),
    (["--url=postgresql://bob:hunter2@db.example:5432/x"], ["--url=postgresql://bob:***@db.example:5432/x"]),
    (["s3://AKIA:wJalr@host/bucket"], ["s3://AKIA:***@host/bucket"]),
    (["https://ghp_abc123@github.com/o/r.git"], ["https://***@github.com/o/r.git"]),
    (
        ["--data", "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Expires=60"],
        ["--data", "https://b.s3.amazonaws.com/k?X-Amz-Signature=***&X-Amz-Expires=60"],
    ),
    # NAME=VALUE overrides and headers
    (["db.password=hunter2", "trainer.max_epochs=3"], ["db.password=***", "trainer.max_epochs=3"]),
    (["-H", "Authorization: Bearer abc"], ["-H", "Authorization: ***"]),
    # ordinary ML flags are left alone
    (
        ["--sigma", "0.5", "--max-tokens", "512", "--tokenizer", "bert", "--num-passes", "3", "--key-dim", "64"],
        ["--sigma", "0.5", "--max-tokens", "512", "--tokenizer", "bert", "--num-passes", "3", "--key-dim", "64"],
    ),
    (
        ["-m", "train", "--lr", "-5", "--author", "ann", "https://example.com/a@b"],
        ["-m", "train", "--lr", "-5", "--author", "ann", "https://example.com/a@b"],
    ),
]


@pytest.mark.parametrize("argv, expected", ARGV_CASES)
def test_mask_argv(argv: list[str], expected: list[str]) -> None:
    assert mask_argv(["python", "train.py", *argv]) == ["python", "train.py", *expected]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("https://bob:hunter2@db.example/x", "https://bob:***@db.example/x"),
        ("mysql://u:p@ss@h/db", "mysql://u:***@h/db"),  # unencoded '@' in the password
        ("see https://a:b@h1/x and ftp://c:d@h2", "see https://a:***@h1/x and ftp://c:***@h2"),
        (
            "https://h/p?sig=1&key=2&access_token=3&token=4&ok=5",
            "https://h/p?sig=***&key=***&access_token=***&token=***&ok=5",
        ),
        ("https://h/p#access_token=abc&state=s", "https://h/p#access_token=***&state=s"),
        (
            "https://h/p?X-Amz-Credential=AKIA%2F1&X-Amz-Security-Token=t",
            "https://h/p?X-Amz-Credential=***&X-Amz-Security-Token=***",
        ),
        ("host=db user=u password=hunter2 sslmode=require", "host=db user=u password=*** sslmode=require"),
        ("no secrets here", "no secrets here"),
        ("https://example.com/path?page=2", "https://example.com/path?page=2"),
        ("lr=0.1", "lr=0.1"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_scrub_value_recurses_and_copies() -> None:
    params = {
        "lr": 0.1,
        "db": {"url": "postgresql://bob:hunter2@db/x", "pool": 4},
        "urls": ["https://h/x?token=abc", ("s3://k:s@h/b", 3)],
        "name": "resnet",
    }
    out = scrub_value(params)
    assert out == {
        "lr": 0.1,
        "db": {"url": "postgresql://bob:***@db/x", "pool": 4},
        "urls": ["https://h/x?token=***", ("s3://k:***@h/b", 3)],
        "name": "resnet",
    }
    assert params["db"]["url"] == "postgresql://bob:hunter2@db/x"  # the input is untouched
    assert out is not params and out["db"] is not params["db"]
    assert scrub_value("plain") == "plain" and scrub_value(None) is None and scrub_value(3) == 3


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "--db-pass",
        "passphrase",
        "HF_TOKEN",
        "MODELTRACK_UI_TOKEN",
        "api_key",
        "X-Amz-Signature",
        "sig",
        "bearer",
        "AUTH",
        "credential",
        "cookie",
        "SESSION_ID",
        "pwd",
        "AWS_REGION",
        "tokenizer_password",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "lr",
        "OMP_NUM_THREADS",
        "PL_GLOBAL_SEED",
        "TOKENIZERS_PARALLELISM",
        "max_tokens",
        "tokenizer",
        "sigma",
        "design",
        "num_passes",
        "key_dim",
        "author",
        "KERAS_BACKEND",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_allowlist_is_not_secret_and_covers_reproducibility() -> None:
    assert not [n for n in capture_env.ENV_ALLOWLIST if is_secret_name(n)]
    for name in (
        "PL_GLOBAL_SEED",
        "PYTHONHASHSEED",
        "OMP_NUM_THREADS",
        "CUDA_VISIBLE_DEVICES",
        "CUBLAS_WORKSPACE_CONFIG",
        "NCCL_DEBUG",
        "KERAS_BACKEND",
        "JAX_PLATFORMS",
        "MODELTRACK_MODEL",
        "MODELTRACK_STRICT",
    ):
        assert name in capture_env.ENV_ALLOWLIST
    assert "MODELTRACK_UI_TOKEN" not in capture_env.ENV_ALLOWLIST


SECRET_ENV = {
    "PL_FOO": "secretvalue",
    "TF_VAR_db_password": "tfvarsecret",
    "MODELTRACK_UI_TOKEN": "uitoken-tok",
    "AWS_SECRET_ACCESS_KEY": "awssecretvalue",
}
SECRET_ARGS = ["--db-pass", "hunter2", "--bearer", "abc", "-p", "s3cret", "--url", "https://bob:hunter2@db.example/x"]
#: strings that must appear in no file of the store
LEAKS = [
    b"hunter2",
    b"s3cret",
    b"secretvalue",
    b"tfvarsecret",
    b"uitoken-tok",
    b"awssecretvalue",
    b'"abc"',
    b"TF_VAR_db_password",
    b"PL_FOO",
    b"MODELTRACK_UI_TOKEN",
]


def test_collect_masks_argv_and_keeps_only_allowed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "https://u:hunter2@x")  # even allowed values are scrubbed
    monkeypatch.setattr(sys, "orig_argv", ["python", "train.py", *SECRET_ARGS])
    env, _ = capture_env.collect(with_git=False)
    text = json.dumps(env).encode()
    for leak in LEAKS:
        assert leak not in text, leak
    assert env["env"]["OMP_NUM_THREADS"] == "3"
    assert env["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert env["env"]["NCCL_SOCKET_IFNAME"] == "https://u:***@x"
    assert env["env"]["MODELTRACK_STRICT"] == "1"
    assert set(env["env"]) <= set(capture_env.ENV_ALLOWLIST)
    assert env["command"] == [
        "python",
        "train.py",
        "--db-pass",
        "***",
        "--bearer",
        "***",
        "-p",
        "***",
        "--url",
        "https://bob:***@db.example/x",
    ]


def test_run_writes_no_secret_to_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\nimport modeltrack as mt\n"
        "with mt.start('secrets', params={'n_args': len(sys.argv)}) as v:\n"
        "    v.log_metrics({'loss': 0.5}, step=0)\n"
    )
    env = {**os.environ, **SECRET_ENV, "OMP_NUM_THREADS": "3", "MODELTRACK_STORE": str(store)}
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "run", "--", "python", str(script), *SECRET_ARGS],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    files = [p for p in store.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        for leak in LEAKS:
            assert leak not in data, f"{leak!r} written to {p.relative_to(store)}"
    recorded = mt.show("secrets", store=str(store))["environment"]
    assert recorded["env"]["OMP_NUM_THREADS"] == "3"
    assert recorded["command"][-len(SECRET_ARGS) :] == [
        "--db-pass",
        "***",
        "--bearer",
        "***",
        "-p",
        "***",
        "--url",
        "https://bob:***@db.example/x",
    ]
