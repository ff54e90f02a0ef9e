"""What a model's training objects are made of: settings of optimizers and schedulers and a
fingerprint of a network's structure, read from their attributes.

Nothing here imports a framework: the objects are only walked (PyTorch's ``Optimizer``,
``LRScheduler`` and ``nn.Module`` have the attributes read here; others are read as far as
they have them).

Example:
    >>> optimizer_settings(torch.optim.Adam(net.parameters(), lr=1e-3))  # doctest: +SKIP
    {'name': 'Adam', 'lr': 0.001, 'betas': (0.9, 0.999), 'eps': 1e-08, ...}
    >>> module_architecture(net)  # doctest: +SKIP
    {'architecture': 'sha256:…', 'structure': ['mymod.Net', '. Net', '0 Linear weight[4, 3] bias[4]', …],
     'params_total': 101, 'params_trainable': 101}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from .params import is_simple

__all__ = [
    "architecture",
    "attributes",
    "module_architecture",
    "optimizer_settings",
    "scheduler_settings",
    "structure_changes",
]

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


#: structure lines kept in a record (the fingerprint covers all of them)
MAX_STRUCTURE_LINES = 400


def architecture(structure: Iterable[str], **counts: int) -> dict[str, Any]:
    """The one architecture record every framework writes into ``info``.

    ``structure`` is one line per part of the model, in order: a class, a layer, a pipeline
    step, with the shapes it holds but no values and no names a framework numbers per
    process (``dense_3``). The fingerprint covers every line; ``diff`` compares fingerprints
    (a change is a major semantic bump) and shows the lines added and removed.

    Returns:
        ``{"architecture": "sha256:<16 hex>", "structure": [line, …], **counts}`` (at most
        :data:`MAX_STRUCTURE_LINES` lines kept; ``structure_lines`` says how many there were
        when more).
    """
    lines = [str(line) for line in structure]
    h = hashlib.sha256("\n".join(lines).encode())
    out: dict[str, Any] = {"architecture": "sha256:" + h.hexdigest()[:16], "structure": lines[:MAX_STRUCTURE_LINES]}
    if len(lines) > MAX_STRUCTURE_LINES:
        out["structure_lines"] = len(lines)
    out.update(counts)
    return out


def structure_changes(a: Any, b: Any) -> dict[str, list[str]]:
    """The structure lines only ``b`` has (``added``) and only ``a`` has (``removed``), in
    order; empty when either record predates structure lines."""
    if not isinstance(a, list) or not isinstance(b, list):
        return {"added": [], "removed": []}
    left, right = list(map(str, a)), list(map(str, b))
    return {"added": [x for x in right if x not in left], "removed": [x for x in left if x not in right]}


def _shapes(tensors: Iterable[tuple[str, Any]]) -> str:
    return " ".join(f"{name}{list(t.shape)}" for name, t in tensors)


def module_architecture(module: Any) -> dict[str, Any]:
    """:func:`architecture` of a ``torch.nn.Module``: its class, then one line per submodule
    (its path, type and the shapes of its own parameters and buffers), and parameter counts."""
    lines = [f"{type(module).__module__}.{type(module).__qualname__}"]
    for name, sub in module.named_modules():
        own = _shapes([*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)])
        lines.append(f"{name or '.'} {type(sub).__qualname__} {own}".rstrip())
    total = trainable = 0
    for p in module.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return architecture(lines, params_total=total, params_trainable=trainable)
