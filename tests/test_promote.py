"""Promotions CI can trust: finished versions only, a guard that says what it compared,
rollback through the history, exit codes 0/3/1 and --json results, through the API and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import modeltrack as mt
from modeltrack.errors import (
    GuardMetricError,
    PromotionRefusedError,
    StoreError,
    VersionNotFinishedError,
    VersionNotFoundError,
)


def cli(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modeltrack", "--store", store, *args], capture_output=True, text=True, timeout=120
    )


def make(store: str, *losses: float, fail: bool = False, **extra: float) -> int:
    """One version with a val_loss series (and more metrics); ``fail`` marks it failed."""
    try:
        with mt.start("m", store=store) as v:
            for e, loss in enumerate(losses):
                v.log_metrics({"val_loss": loss, **extra}, epoch=e)
            if fail:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    return v.number


def test_promote_refuses_a_failed_version_unless_forced(store_uri: str) -> None:
    make(store_uri, 0.5)
    make(store_uri, 0.1, fail=True)
    mt.promote("m@v1", "production", store=store_uri)
    with pytest.raises(VersionNotFinishedError, match=r"m@v2: it is failed, not finished.*force=True"):
        mt.promote("m@v2", "production", metric="val_loss", store=store_uri)
    assert mt.resolve("m@production", store=store_uri) == ("m", 1)
    ev = mt.promote("m@v2", "production", force=True, store=store_uri)
    assert (ev["from"], ev["to"], ev["noop"]) == (1, 2, False)
    # the CLI: a refusal exits 3 and says why; --force promotes
    mt.rollback("m", "production", store=store_uri)
    r = cli(store_uri, "promote", "m@v2", "--json")
    assert r.returncode == 3, r.stderr
    assert "failed, not finished" in r.stderr and r.stderr.count("\n") == 1
    assert r.stderr.startswith("modeltrack: refused to move 'production' to m@v2")
    doc = json.loads(r.stdout)
    assert doc["refused"] is True and (doc["from"], doc["to"], doc["status"]) == (1, 2, "failed")
    assert cli(store_uri, "promote", "m@v2", "--force").returncode == 0
    assert mt.resolve("m@production", store=store_uri) == ("m", 2)


def test_repromoting_the_holder_is_a_noop(store_uri: str) -> None:
    make(store_uri, 0.5)
    mt.promote("m@v1", store=store_uri)
    ev = mt.promote("m@v1", store=store_uri)
    assert ev["noop"] is True and ev["seq"] is None
    r = cli(store_uri, "promote", "m@v1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["noop"] is True
    assert "already holds production; nothing recorded" in cli(store_uri, "promote", "m@v1").stdout
    hist = mt.alias_history("m", "production", store=store_uri)
    assert [(e["from"], e["to"]) for e in hist] == [(None, 1)]  # no v1 -> v1 event


def test_rollback_walks_back_through_the_history(store_uri: str) -> None:
    for n in range(4):
        make(store_uri, 0.5 - n / 10)
    for n in (1, 2, 3, 4):
        mt.promote(f"m@v{n}", store=store_uri)
    assert [mt.rollback("m", store=store_uri)["to"] for _ in range(3)] == [3, 2, 1]
    with pytest.raises(StoreError, match="no earlier holder"):
        mt.rollback("m", store=store_uri)
    # promote again, then roll back: back to the holder before, not toggling
    mt.promote("m@v4", store=store_uri)
    assert mt.rollback("m", store=store_uri)["to"] == 1
    # --to picks any past holder; one that never held it is refused with the list
    ev = mt.rollback("m", to="v3", store=store_uri)
    assert (ev["from"], ev["to"], ev["action"]) == (1, 3, "rollback")
    assert mt.rollback("m", store=store_uri)["to"] == 1  # a rollback undoes the move to v3
    mt.promote("m@v2", store=store_uri)
    make(store_uri, 0.9)
    with pytest.raises(VersionNotFoundError, match=r"m@v5 never held 'production'; its past holders: v1, v2, v3, v4"):
        mt.rollback("m", to=5, store=store_uri)
    r = cli(store_uri, "rollback", "m", "--to", "v5")
    assert r.returncode == 1 and "past holders: v1, v2, v3, v4" in r.stderr
    r = cli(store_uri, "rollback", "m", "--to", "v4", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {k: doc[k] for k in ("model", "alias", "from", "to", "action", "noop")} == {
        "model": "m",
        "alias": "production",
        "from": 2,
        "to": 4,
        "action": "rollback",
        "noop": False,
    }
    assert doc["actor"] and doc["seq"] and doc["time"]


def test_rollback_after_remove_restores_the_removed_holder(store_uri: str) -> None:
    make(store_uri, 0.5)
    make(store_uri, 0.4)
    mt.promote("m@v1", store=store_uri)
    mt.promote("m@v2", store=store_uri)
    mt.remove_alias("m", "production", store=store_uri)
    assert mt.rollback("m", store=store_uri)["to"] == 2
    assert mt.rollback("m", store=store_uri)["to"] == 1


def test_guard_names_the_version_lacking_the_metric(store_uri: str) -> None:
    make(store_uri, 0.5, acc=0.8)
    make(store_uri, 0.4, acc=0.9)
    mt.promote("m@v1", store=store_uri)
    with pytest.raises(
        GuardMetricError, match=r"m@v2 \(the candidate\) has no metric 'nosuch'; its metrics: acc, val_loss"
    ):
        mt.promote("m@v2", metric="nosuch", store=store_uri)
    r = cli(store_uri, "promote", "m@v2", "--metric", "nosuch")
    assert r.returncode == 1  # an error, not a refusal
    assert "m@v2 (the candidate) has no metric 'nosuch'; its metrics: acc, val_loss" in r.stderr
    with mt.start("m", store=store_uri) as v:  # v3 has only an unknown-direction metric
        v.log_metrics({"widgets": 3.0, "val_loss": 0.1}, epoch=0)
    with pytest.raises(GuardMetricError, match=r"m@v1 \(the holder of 'production'\) has no metric 'widgets'"):
        mt.promote("m@v3", metric="widgets", mode="max", store=store_uri)
    with pytest.raises(GuardMetricError, match="cannot tell whether higher or lower 'widgets' is better"):
        mt.promote("m@v3", metric="widgets", store=store_uri)
    assert mt.resolve("m@production", store=store_uri) == ("m", 1)


def test_guard_says_which_value_it_compared(store_uri: str) -> None:
    make(store_uri, 0.2, 0.6)  # best 0.2, last 0.6
    make(store_uri, 0.3, 0.4)  # best 0.3, last 0.4
    mt.promote("m@v1", store=store_uri)
    # by the last value v2 is better; by the best it is worse
    with pytest.raises(PromotionRefusedError, match=r"val_loss \(best\) = 0.3 is worse than 0.2 \(best\) of v1") as exc:
        mt.promote("m@v2", metric="val_loss", compare="best", store=store_uri)
    assert exc.value.guard == {
        "metric": "val_loss",
        "goal": "min",
        "compare": "best",
        "candidate": {"version": 2, "value": 0.3},
        "holder": {"version": 1, "value": 0.2},
    }
    r = cli(store_uri, "promote", "m@v2", "--metric", "val_loss", "--compare", "best", "--json")
    assert r.returncode == 3
    doc = json.loads(r.stdout)
    assert doc["refused"] is True and doc["guard"]["compare"] == "best" and doc["guard"]["holder"]["value"] == 0.2
    r = cli(store_uri, "promote", "m@v2", "--metric", "val_loss", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["from"], doc["to"], doc["action"], doc["refused"], doc["noop"]) == (1, 2, "promote", False, False)
    assert doc["guard"]["compare"] == "last"
    assert doc["guard"]["candidate"] == {"version": 2, "value": 0.4}
    assert doc["guard"]["holder"] == {"version": 1, "value": 0.6}
    mt.rollback("m", store=store_uri)
    out = cli(store_uri, "promote", "m@v2", "--metric", "val_loss").stdout
    assert "guard val_loss (last, min is better): v2 0.4 vs v1 0.6" in out


def test_alias_set_json_and_the_actor_in_histories(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_ACTOR", "ci-bot@runner")
    make(store_uri, 0.5)
    r = cli(store_uri, "alias", "set", "m@v1", "staging", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["alias"], doc["from"], doc["to"], doc["actor"], doc["noop"]) == (
        "staging",
        None,
        1,
        "ci-bot@runner",
        False,
    )
    assert json.loads(cli(store_uri, "alias", "set", "m@v1", "staging", "--json").stdout)["noop"] is True
    out = cli(store_uri, "alias", "history", "m").stdout
    assert "BY" in out.splitlines()[0] and "ci-bot@runner" in out
    assert cli(store_uri, "tag", "m@v1", "reviewed").returncode == 0
    out = cli(store_uri, "tag", "m@v1", "--history").stdout
    assert "ci-bot@runner" in out and "reviewed" in out
    hist = json.loads(cli(store_uri, "tag", "m@v1", "--history", "--json").stdout)
    assert hist[0]["actor"] == "ci-bot@runner" and hist[0]["set"] == {"reviewed": None}
    assert cli(store_uri, "notes", "m@v1", "ship it").returncode == 0
    assert json.loads(cli(store_uri, "notes", "m@v1", "--json").stdout)["actor"] == "ci-bot@runner"
    show = cli(store_uri, "show", "m@v1").stdout
    assert "notes (by ci-bot@runner" in show and "(last change by ci-bot@runner" in show
    assert "by ci-bot@runner  finished" in show.splitlines()[1]  # who trained it (the version's claim)
    assert mt.show("m@v1", store=store_uri)["actor"] == "ci-bot@runner"
    doc = json.loads(cli(store_uri, "alias", "rm", "m", "staging", "--json").stdout)
    assert (doc["action"], doc["from"], doc["to"]) == ("remove", 1, None)
