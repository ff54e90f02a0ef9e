"""What a model's training objects are made of: settings of optimizers and schedulers and a
fingerprint of a network's structure, read from their attributes.

Nothing here imports a framework: the objects are only walked (PyTorch's ``Optimizer``,
``LRScheduler`` and ``nn.Module`` have the attributes read here; others are read as far as
they have them).

Example:
    >>> optimizer_settings(torch.optim.Adam(net.parameters(), lr=1e-3))  # doctest: +SKIP
    {'name': 'Adam', 'lr': 0.001, 'betas': (0.9, 0.999), 'eps': 1e-08, ...}
    >>> module_architecture(net)  # doctest: +SKIP
    {'architecture': 'sha256:…', 'params_total': 101, 'params_trainable': 101}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from .params import is_simple

__all__ = ["attributes", "module_architecture", "optimizer_settings", "scheduler_settings"]

#: optimizer defaults that are implementation switches, not hyperparameters
OPTIMIZER_NOISE = frozenset(
    {"params", "foreach", "maximize", "capturable", "differentiable", "fused", "decoupled_weight_decay"}
)


def attributes(obj: Any, names: Iterable[str], *, simple: bool = False) -> dict[str, Any]:
    """``{name: getattr(obj, name)}``; a missing or failing attribute reads as ``None``
    (a property may not be ready yet). ``simple``: only values :func:`is_simple` accepts."""
    out: dict[str, Any] = {}
    for name in names:
        try:
            value = getattr(obj, name, None)
        except Exception:  # noqa: BLE001 - a property may not be ready yet
            value = None
        if not simple or is_simple(value):
            out[name] = value
    return out


def optimizer_settings(opt: Any) -> dict[str, Any]:
    """An optimizer's class name and its simple ``defaults`` (learning rate, betas…),
    without implementation switches (``foreach``, ``fused``…) and unset values."""
    settings: dict[str, Any] = {"name": type(opt).__name__}
    for k, v in (getattr(opt, "defaults", None) or {}).items():
        if k not in OPTIMIZER_NOISE and v is not None and is_simple(v):
            settings[k] = v
    return settings


def scheduler_settings(sched: Any) -> dict[str, Any]:
    """A learning-rate scheduler's class name and its simple public attributes (tuples as
    lists), without its optimizer and its progress (``last_epoch``)."""
    settings: dict[str, Any] = {"name": type(sched).__name__}
    for k, v in vars(sched).items():
        if not k.startswith("_") and k not in ("optimizer", "last_epoch", "verbose") and is_simple(v):
            settings[k] = list(v) if isinstance(v, tuple) else v
    return settings


def module_architecture(module: Any) -> dict[str, Any]:
    """Parameter counts and a fingerprint of a ``torch.nn.Module``'s structure (class,
    submodule types, parameter and buffer names and shapes; not the values, not the dtype)."""
    h = hashlib.sha256()
    h.update(f"{type(module).__module__}.{type(module).__qualname__}\n".encode())
    for name, sub in module.named_modules():
        h.update(f"m {name} {type(sub).__qualname__}\n".encode())
    total = trainable = 0
    for name, p in module.named_parameters():
        h.update(f"p {name} {tuple(p.shape)}\n".encode())
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    for name, b in module.named_buffers():
        h.update(f"b {name} {tuple(b.shape)}\n".encode())
    return {"architecture": "sha256:" + h.hexdigest()[:16], "params_total": total, "params_trainable": trainable}
