"""Evaluations: metrics computed on a version after its training ended.

A test set scored right after ``fit``, a holdout checked by a nightly job in another process,
``model.evaluate`` in Keras, ``trainer.test`` in Lightning: each is one append-only record
beside the version's immutable training record, under a name no other writer can take
(``models/NAME/versions/N/evaluations/<time>-<random>.json``), so evaluations from many
processes never overwrite each other and the version itself never changes.

A record holds a name (``test``, ``holdout``…), its metrics, the fingerprints of the data
evaluated on, when, by whom (the actor) and by what (``source``: ``"lightning trainer.test"``,
``"keras model.evaluate"``, ``"api"``…).

Example:
    >>> import modeltrack as mt
    >>> mt.evaluate("churn@v3", {"auc": 0.91}, name="holdout", data={"holdout": X_holdout})
    {'name': 'holdout', 'metrics': {'auc': 0.91}, 'data': [...], 'created_at': '…', ...}
    >>> mt.promote("churn@v3", "production", metric="holdout.auc")  # the guard can use it
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import config
from ._util import now_iso
from .capture.data import fingerprint
from .errors import InvalidValueError, KeyNotFound, ModelTrackError
from .layout import _unique_name, vkey

if TYPE_CHECKING:
    from .repo import Repo
    from .stores import Store

#: the folder of a version's evaluation records
FOLDER = "evaluations"
#: most metrics one evaluation may hold
MAX_METRICS = 1000


def _number(key: str, value: Any) -> float | None:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # 0-d numpy arrays and tensors
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(
            f"evaluation metric {key!r} is {type(value).__name__}, not a number; pass {{name: number}}",
            value=value,
        )
    value = float(value)
    return value if math.isfinite(value) else None


def _data_records(data: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for name, value in (data or {}).items():
        if isinstance(value, Mapping) and "fingerprint" in value:
            rec = {"name": str(name), "fingerprint": value.get("fingerprint"), "shape": value.get("shape")}
        else:
            info = fingerprint(value)
            rec = {"name": str(name), "fingerprint": info["fingerprint"], "shape": info.get("shape")}
        out.append(rec)
    return out


def make_record(
    name: str, metrics: Mapping[str, Any], *, data: Mapping[str, Any] | None = None, source: str | None = None
) -> dict[str, Any]:
    """The record :func:`add` writes (checked: names, numbers, data fingerprints).

    Raises:
        InvalidValueError, InvalidNameError: a bad name, metric or dataset.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise InvalidValueError(f"evaluation name {name!r} is invalid; use a short name such as 'test'", value=name)
    if not isinstance(metrics, Mapping) or not metrics:
        raise InvalidValueError(
            "an evaluation needs at least one metric; pass metrics={'accuracy': 0.93}", value=metrics
        )
    if len(metrics) > MAX_METRICS:
        raise InvalidValueError(f"an evaluation holds at most {MAX_METRICS} metrics, got {len(metrics)}")
    for key in metrics:
        if not isinstance(key, str) or not key or len(key) > 256:
            raise InvalidValueError(f"evaluation metric name {key!r} is invalid; name metrics with short strings")
    values = {k: _number(k, v) for k, v in metrics.items()}
    return {
        "name": name.strip(),
        "metrics": values,
        "data": _data_records(data),
        "created_at": now_iso(),
        "actor": config.actor(),
        "source": source or "api",
    }


def add(
    repo: Repo, model: str, number: int, record: Mapping[str, Any], *, writer: Store | None = None
) -> dict[str, Any]:
    """Append ``record`` (from :func:`make_record`) to version ``number`` of ``model``.

    ``writer``: the store to append through (the version's own, possibly spooling, writer,
    which knows the version has ended); default the repository's store, after checking that
    the version is not still running.

    Raises:
        ModelTrackError: the version is still running (log to it instead).
    """
    if writer is None and repo.status(model, number) == "running":
        raise ModelTrackError(
            f"{model}@v{number} is still running; log these metrics to it with version.log_metrics, or "
            f"evaluate it once it has ended"
        )
    rec = {**record, "model": model, "version": number}
    (writer or repo.store).write_json(vkey(model, number, f"{FOLDER}/{_unique_name()}.json"), rec)
    return rec


def read(repo: Repo, model: str, number: int) -> list[dict[str, Any]]:
    """Every evaluation of a version, oldest first (a damaged one raises, naming its key)."""
    out = []
    for name in sorted(repo.store.list(vkey(model, number, FOLDER))):
        try:
            rec = repo.read_json(vkey(model, number, f"{FOLDER}/{name}"))
        except KeyNotFound:
            continue  # removed by gc with its version meanwhile
        out.append({k: rec.get(k) for k in ("name", "metrics", "data", "created_at", "actor", "source")})
    return out


def metric_values(evaluations: list[dict[str, Any]]) -> dict[str, float | None]:
    """How listings, ``diff`` and the promotion guard name evaluation metrics: ``EVAL.METRIC``
    (``test.accuracy``) and, for short, ``METRIC`` alone; the newest evaluation of a name wins."""
    out: dict[str, float | None] = {}
    for ev in evaluations:  # oldest first: newer ones overwrite
        for k, v in (ev.get("metrics") or {}).items():
            out[f"{ev.get('name')}.{k}"] = v
            out[k] = v
    return out


__all__ = ["FOLDER", "add", "make_record", "metric_values", "read"]
