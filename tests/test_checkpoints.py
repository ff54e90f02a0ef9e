"""The checkpoint policy and ledger, framework-free: a "model" whose state is one number, a
real local store, and a fake clock for the write budget."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import modeltrack as mt
from modeltrack.checkpoints import POLICIES, CheckpointLedger, CheckpointPolicy
from modeltrack.errors import InvalidValueError, ModelTrackError, ModelTrackWarning


class Clock:
    """A clock that moves only when told (``advance``) or when a save costs time."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counter:
    """A model whose state is one integer; ``save`` writes it (and takes ``cost`` seconds)."""

    def __init__(self, clock: Clock | None = None, cost: float = 0.0) -> None:
        self.state = 0
        self.saved: list[str] = []
        self.clock, self.cost = clock, cost

    def save(self, path: Path) -> None:
        path.write_text(f"state {self.state}")
        self.saved.append(path.name)
        if self.clock is not None:
            self.clock.now += self.cost

    def capture(self) -> int:
        return self.state

    def restore(self, state: int) -> None:
        self.state = state


def run(
    tmp_path: Path,
    policy: CheckpointPolicy,
    losses: list[float],
    *,
    writer: Counter | None = None,
    clock: Clock | None = None,
    epoch_seconds: float = 0.0,
    final: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, dict[str, Any]], Counter, CheckpointLedger]:
    """Train ``len(losses)`` epochs (state = epoch + 1) and return the stored checkpoints by name."""
    store = str(tmp_path / "s")
    writer = writer or Counter()
    clock = clock or Clock()
    directory = tmp_path / "work"
    with mt.start("m", store=store) as v:
        ledger = CheckpointLedger(
            v, policy, directory, writer, name_format="ckpt/e{epoch}.bin", epochs=len(losses), clock=clock, **kwargs
        )
        for epoch, loss in enumerate(losses):
            writer.state = epoch + 1
            clock.now += epoch_seconds
            ledger.epoch_end(epoch, (epoch + 1) * 10, {"loss": loss})
        final_file = None
        if final:
            directory.mkdir(parents=True, exist_ok=True)
            final_file = directory / "model.bin"
            final_file.write_text(f"state {writer.state}")
        ledger.finish(final_file, len(losses) - 1 if final else None)
    arts = {a["path"]: a for a in mt.show("m", store=store)["artifacts"] if a["kind"] == "checkpoint"}
    return arts, writer, ledger


def content(tmp_path: Path, name: str) -> str:
    return Path(mt.artifact_path("m@v1", name, store=str(tmp_path / "s"))).read_text()


# ---------------------------------------------------------------------- policy
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"checkpoints": "often"}, "checkpoints='often'"),
        ({"mode": "up"}, "mode='up'"),
        ({"every_n_epochs": 0}, "every_n_epochs=0"),
        ({"every_n_epochs": True}, "every_n_epochs=True"),
        ({"checkpoint_budget": 2.0}, "checkpoint_budget=2.0"),
        ({"checkpoint_budget": "1%"}, "checkpoint_budget='1%'"),
    ],
)
def test_invalid_policy_settings_name_the_option(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidValueError, match=named) as err:
        CheckpointPolicy(**kwargs)
    assert isinstance(err.value, ModelTrackError) and err.value.value == next(iter(kwargs.values()))


def test_policy_names() -> None:
    assert POLICIES == ("best", "last", "every_n", "all", "none")
    assert CheckpointPolicy(None).name == "none"
    assert CheckpointPolicy("all", every_n_epochs=3).every_n_epochs == 1
    every = CheckpointPolicy("every_n", every_n_epochs=2)
    assert [e for e in range(6) if every.due(e)] == [1, 3, 5]
    assert not CheckpointPolicy("best").due(1) and not CheckpointPolicy("best").periodic()


def test_monitor_default_goal_and_missing_warning(tmp_path: Path) -> None:
    with mt.start("m", store=str(tmp_path / "s")) as v:

        def ledger(**kw: Any) -> CheckpointLedger:
            return CheckpointLedger(v, CheckpointPolicy("best", **kw), tmp_path, Counter(), framework="toy")

        a = ledger()
        assert a.resolve_monitor({"loss": 1.0, "val_loss": 2.0}) == "val_loss" and a.goal == "min"
        assert a.resolve_monitor({"loss": 1.0}) == "val_loss"  # fixed at the first epoch
        b = ledger()
        assert b.resolve_monitor({"loss": 1.0}) == "loss"
        c = ledger(monitor="val_acc")
        with pytest.warns(ModelTrackWarning, match=r"'val_acc' is not in the toy metrics \(loss\)"):
            assert c.resolve_monitor({"loss": 1.0}) == "val_acc"
        assert c.goal == "max"
        d = ledger(monitor="val_acc", mode="min")
        d.resolve_monitor({"val_acc": 0.5})
        assert d.goal == "min"
        e = ledger(monitor="weird_metric")  # no guess from the name: lower is better
        e.resolve_monitor({"weird_metric": 0.5})
        assert e.goal == "min"


def test_improved(tmp_path: Path) -> None:
    with mt.start("m", store=str(tmp_path / "s")) as v:
        low = CheckpointLedger(v, CheckpointPolicy("best"), tmp_path, Counter())
        assert not low.improved(None) and not low.improved(float("nan"))
        assert low.improved(5.0)
        low.best_value = 5.0
        assert low.improved(4.0) and not low.improved(5.0) and not low.improved(6.0)
        high = CheckpointLedger(v, CheckpointPolicy("best", mode="max"), tmp_path, Counter())
        high.goal, high.best_value = "max", 5.0
        assert high.improved(6.0) and not high.improved(4.0)


# ---------------------------------------------------------------------- policies end to end
def test_best_keeps_only_the_best_and_its_value(tmp_path: Path) -> None:
    arts, writer, ledger = run(tmp_path, CheckpointPolicy("best", checkpoint_budget=None), [3.0, 2.0, 2.5, 1.0, 1.5])
    assert writer.saved == ["e0.bin", "e1.bin", "e3.bin"]  # a write per improvement only
    assert list(arts) == ["ckpt/e3.bin"]  # earlier bests released
    best = arts["ckpt/e3.bin"]
    assert best["best"] is True and best["epoch"] == 3 and best["step"] == 40
    assert best["metadata"] == {"monitor": "loss", "value": 1.0}
    assert content(tmp_path, "ckpt/e3.bin") == "state 4"
    assert ledger.best_name == "ckpt/e3.bin" and ledger.best_value == 1.0


def test_best_by_max_goal(tmp_path: Path) -> None:
    arts, _, _ = run(tmp_path, CheckpointPolicy("best", mode="max", checkpoint_budget=None), [3.0, 2.0, 4.0, 1.0])
    assert list(arts) == ["ckpt/e2.bin"]


def test_last_keeps_only_the_latest(tmp_path: Path) -> None:
    arts, writer, _ = run(tmp_path, CheckpointPolicy("last", checkpoint_budget=None), [3.0, 2.0, 2.5])
    assert writer.saved == ["e0.bin", "e1.bin", "e2.bin"]
    assert list(arts) == ["ckpt/e2.bin"] and not arts["ckpt/e2.bin"].get("best")
    assert content(tmp_path, "ckpt/e2.bin") == "state 3"


@pytest.mark.parametrize(
    ("policy", "kept", "best"),
    [
        (CheckpointPolicy("every_n", every_n_epochs=2, checkpoint_budget=None), [1, 3], [1]),
        (CheckpointPolicy("all", every_n_epochs=2, checkpoint_budget=None), [0, 1, 2, 3], [1]),
        (CheckpointPolicy("none"), [], []),
        (CheckpointPolicy(None), [], []),
    ],
)
def test_periodic_policies_keep_every_due_epoch(
    tmp_path: Path, policy: CheckpointPolicy, kept: list[int], best: list[int]
) -> None:
    arts, _, _ = run(tmp_path, policy, [3.0, 2.0, 2.5, 2.2])
    assert sorted(a["epoch"] for a in arts.values()) == kept
    # Every checkpoint that improved was logged as best; the store keeps the latest as the best.
    assert sorted(a["epoch"] for a in arts.values() if a.get("best")) == best


# ---------------------------------------------------------------------- budget and deferred writes
def test_deferred_best_is_written_at_the_end_with_its_own_state(tmp_path: Path) -> None:
    arts, writer, _ = run(tmp_path, CheckpointPolicy("best", checkpoint_budget=0), [3.0, 1.0, 2.0, 2.5])
    assert writer.saved == ["e1.bin"]  # one write, at the end
    assert list(arts) == ["ckpt/e1.bin"] and arts["ckpt/e1.bin"]["best"] is True
    assert content(tmp_path, "ckpt/e1.bin") == "state 2"  # epoch 1's state, not the live one
    assert writer.state == 4  # the live state was put back


def test_final_model_file_serves_as_the_last_epochs_checkpoint(tmp_path: Path) -> None:
    arts, writer, _ = run(
        tmp_path, CheckpointPolicy("best", checkpoint_budget=0), [3.0, 2.0, 1.0], final=True, final_model=True
    )
    assert writer.saved == []  # copied from the final model file
    assert list(arts) == ["ckpt/e2.bin"] and content(tmp_path, "ckpt/e2.bin") == "state 3"
    arts, writer, _ = run(tmp_path / "b", CheckpointPolicy("last", checkpoint_budget=0), [3.0, 2.0], final=True)
    assert writer.saved == [] and list(arts) == ["ckpt/e1.bin"]


def test_final_file_of_another_state_does_not_serve(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    writer = Counter()
    with mt.start("m", store=store) as v:
        ledger = CheckpointLedger(v, CheckpointPolicy("best", checkpoint_budget=0), tmp_path / "w", writer)
        writer.state = 7
        ledger.epoch_end(0, 1, {"loss": 1.0})
        writer.state = 8
        final = tmp_path / "final.bin"
        final.write_text("restored weights")
        ledger.finish(final, None)  # e.g. EarlyStopping restored other weights
    assert writer.saved == ["epoch-000"] and writer.state == 8
    assert Path(mt.artifact_path("m@v1", "checkpoints/epoch-000", store=store)).read_text() == "state 7"


def test_budget_share_of_training_time(tmp_path: Path) -> None:
    """Saves of 1 s under a 25% budget: a write waits until 25% of the time since training
    began covers all writes so far plus this one."""
    clock = Clock()
    writer = Counter(clock, cost=1.0)
    policy = CheckpointPolicy("last", checkpoint_budget=0.25)
    arts, _, ledger = run(tmp_path, policy, [1.0] * 8, writer=writer, clock=clock, epoch_seconds=1.0)
    # Epoch 0 (1 s in) is affordable by the first guess of a save's cost (0.02 s); then 2 s
    # of writes need 8 s of training (epoch 6), 3 s would need 12 s: epoch 7 waits for the end.
    assert writer.saved == ["e0.bin", "e6.bin", "e7.bin"]
    assert ledger.write_cost == 3.0
    assert list(arts) == ["ckpt/e7.bin"]


def test_large_state_is_written_at_once_rather_than_held(tmp_path: Path) -> None:
    arts, writer, _ = run(
        tmp_path, CheckpointPolicy("best", checkpoint_budget=0), [3.0, 2.0], state_bytes=10, max_snapshot_bytes=5
    )
    assert writer.saved == ["e0.bin", "e1.bin"] and list(arts) == ["ckpt/e1.bin"]


def test_abort_writes_the_deferred_best_and_drops_a_deferred_last(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    writer = Counter()
    v = mt.start("m", store=store)
    best = CheckpointLedger(v, CheckpointPolicy("best", checkpoint_budget=0), tmp_path / "w", writer)
    last = CheckpointLedger(
        v, CheckpointPolicy("last", checkpoint_budget=0), tmp_path / "w", writer, name_format="l{epoch}"
    )
    writer.state = 1
    best.epoch_end(0, 1, {"loss": 1.0})
    last.epoch_end(0, 1, {"loss": 1.0})
    writer.state = 2
    best.abort()
    last.abort()
    v.end(RuntimeError("boom"))
    rec = mt.show("m@v1", store=store)
    assert rec["status"] == "failed"
    assert [a["path"] for a in rec["artifacts"]] == ["checkpoints/epoch-000"]
    assert writer.state == 2
    last.finish()  # nothing left to write
    assert writer.saved == ["epoch-000"]


def test_mark_best_marks_a_logged_checkpoint_once(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    f = tmp_path / "a.ckpt"
    f.write_text("a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with mt.start("m", store=store) as v:
            ledger = CheckpointLedger(v, CheckpointPolicy("best"), tmp_path, Counter(), name_format="a{epoch}.ckpt")
            assert ledger.log(f, 0, 5, None) == "a0.ckpt"
            ledger.mark_best("a0.ckpt")
            ledger.mark_best("a0.ckpt")
    (art,) = mt.show("m", store=store)["artifacts"]
    assert art["path"] == "a0.ckpt" and art.get("best") is True and ledger.best_name == "a0.ckpt"


def test_the_last_epoch_waits_for_the_final_model_unless_too_large_to_hold(tmp_path: Path) -> None:
    clock = Clock()
    with mt.start("m", store=str(tmp_path / "s")) as v:

        def ledger(**kw: Any) -> CheckpointLedger:
            policy = CheckpointPolicy("last", checkpoint_budget=1)
            return CheckpointLedger(v, policy, tmp_path, Counter(), epochs=3, clock=clock, started=0.0, **kw)

        # 100 s since training began: any write is affordable by time
        waits = ledger(final_model=True, state_bytes=4)
        assert waits.affordable(1) and not waits.affordable(2)
        assert ledger(final_model=False).affordable(2)
        assert ledger(final_model=True, state_bytes=10, max_snapshot_bytes=5).affordable(2)
