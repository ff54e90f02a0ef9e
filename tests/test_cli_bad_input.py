"""Bad command-line input gets one line `modeltrack: error: ...` and exit 1 (argparse's 2 for
usage errors), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import modeltrack as mt

LONG_REF = "m@v" + "9" * 5000


def make_store(root: Path) -> Path:
    """A local store with one finished version ``m@v1`` (a metric, a model file, an alias)."""
    store = root / "store"
    model = root / "model.bin"
    model.write_bytes(b"weights")
    with mt.start("m", store=str(store)) as v:
        v.log_metrics({"loss": 0.5}, step=0, epoch=0)
        v.log_artifact(model, kind="model")
    mt.set_alias("m@v1", "production", store=str(store))
    return store


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path)


def cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modeltrack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MODELTRACK_STORE": str(store)},
        check=False,
    )


def assert_clean_error(r: subprocess.CompletedProcess[str], *needles: str, rc: int = 1) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == rc, (r.returncode, r.stderr)
    if rc == 1:
        assert r.stderr.startswith("modeltrack: error: ") and r.stderr.count("\n") == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)


def test_notes_file_missing_directory_or_binary(store: Path, tmp_path: Path) -> None:
    assert_clean_error(cli(store, "notes", "m", "--file", str(tmp_path / "nope.md")), "no such file")
    assert_clean_error(cli(store, "notes", "m", "--file", str(tmp_path)), "is a directory")
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81binary")
    assert_clean_error(cli(store, "notes", "m", "--file", str(binary)), "not UTF-8", "save it as UTF-8")
    assert_clean_error(cli(store, "notes", "m", "text", "--file", str(binary)), "one of TEXT, --file or --clear")
    good = tmp_path / "notes.md"
    good.write_text("Release ✓\n", encoding="utf-8")
    assert cli(store, "notes", "m", "--file", str(good)).returncode == 0
    assert cli(store, "notes", "m").stdout.strip() == "Release ✓"


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_ui_port_out_of_range(store: Path, port: str) -> None:
    assert_clean_error(cli(store, "ui", "--port", port), "--port must be 0-65535", port)


@pytest.mark.parametrize("poll", ["0", "-1", "nan"])
def test_ui_poll_must_be_positive(store: Path, poll: str) -> None:
    assert_clean_error(cli(store, "ui", "--port", "0", "--poll", poll), "--poll must be")


def test_plot_to_unwritable_paths(store: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in ("/proc/modeltrack-x.png", str(afile / "x.png")):
        assert_clean_error(cli(store, "plot", "m", "--metric", "loss", "-o", out), "cannot write the chart", "-o")
    assert_clean_error(cli(store, "plot", "m", "--metric", "loss", "-o", str(tmp_path)), "is a directory")
    ok = cli(store, "plot", "m", "--metric", "loss", "-o", str(tmp_path / "sub" / "c.png"))
    assert ok.returncode == 0 and (tmp_path / "sub" / "c.png").stat().st_size > 0


@pytest.mark.parametrize(
    "ref, message",
    [
        (LONG_REF, "too long (at most 18)"),
        ("m@" + "1" * 19, "too long"),
        ("m@v²", "neither a version"),
        ("m@v٣", "neither a version"),  # ARABIC-INDIC DIGIT THREE
        ("m@v1²", "neither a version"),
        ("m@" + "a" * 5000, "neither a version"),
    ],
)
def test_odd_version_numbers(store: Path, ref: str, message: str) -> None:
    r = cli(store, "show", ref)
    assert_clean_error(r, message)
    assert len(r.stderr) < 400  # a 5,000-character reference is not echoed whole


def test_big_but_valid_number_is_a_missing_version(store: Path) -> None:
    assert_clean_error(cli(store, "show", "m@v" + "9" * 18), "no version")


@pytest.mark.parametrize("grace", ["-5", "nan"])
def test_gc_grace_must_not_be_negative(store: Path, grace: str) -> None:
    assert_clean_error(cli(store, "gc", "m@v1", "--grace", grace, "--dry-run"), "--grace must be", ">= 0")
    assert mt.versions("m", store=str(store))  # nothing deleted


def test_get_into_a_bad_directory(store: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_clean_error(cli(store, "get", "m", "-o", str(afile)), "is a file")
    assert_clean_error(cli(store, "get", "m", "-o", "/proc/modeltrack-dir"), "cannot copy into -o")


@pytest.mark.parametrize(
    "args, message",
    [
        (["alias", "set", "m@v1", "bad/name"], "invalid alias"),
        (["alias", "set", "m@v1", "7"], "reserved"),
        (["alias", "set", "m@v1", "x" * 300], "invalid alias"),
        (["alias", "history", "m", "bad/name"], "invalid alias"),
        (["alias", "rm", "m", "nope"], "no alias"),
        (["promote", "m@v1", "latest"], "reserved"),
        (["rollback", "m", "staging"], "staging"),
        (["diff", "m@v1", "m@v2"], "no version 2"),
        (["gc", "m"], "explicit versions"),
        (["gc", "m@v1", "n@v1"], "one model at a time"),
        (["gc", "m@v1"], "holds alias"),
        (["tag", "m", "=x"], "tag name"),
        (["versions", "bad/x"], "invalid model name"),
        (["show", "nope", "--json"], "no model 'nope'"),
        (["show", "m@"], "ends with '@'"),
        (["artifacts", "m@0"], "start at 1"),
        (["get", "m", "no-such-file.bin"], "no artifact"),
        (["get", "m", "../../etc/passwd"], "escape"),
        (["plot", "m", "--metric", "nope", "-o", "x.png"], "metrics they have"),
        (["--store", "ftp://x/y", "models"], "unknown store scheme"),
    ],
)
def test_bad_arguments_are_one_line_errors(store: Path, args: list[str], message: str) -> None:
    r = cli(store, *args)
    assert_clean_error(r, message)
    assert r.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["diff", "m@v1"],
        ["alias"],
        ["alias", "set", "m@v1"],
        ["ui", "--port", "abc"],
        ["gc", "--grace", "soon"],
        ["plot", "m"],
        ["tag", "m", "--remove"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(store: Path, args: list[str]) -> None:
    assert_clean_error(cli(store, *args), rc=2)
