"""modeltrack.capture.model: settings of optimizers and schedulers, network fingerprints."""

from __future__ import annotations

from typing import Any

import pytest

from modeltrack.capture.model import attributes, module_architecture, optimizer_settings, scheduler_settings

torch = pytest.importorskip("torch")


def net() -> Any:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))


def test_optimizer_settings_are_its_hyperparameters_without_switches() -> None:
    opt = torch.optim.AdamW(net().parameters(), lr=0.01, weight_decay=0.1)
    settings = optimizer_settings(opt)
    assert settings["name"] == "AdamW"
    assert settings["lr"] == 0.01 and settings["weight_decay"] == 0.1
    assert tuple(settings["betas"]) == (0.9, 0.999)
    assert not {"params", "foreach", "fused", "maximize", "capturable", "differentiable"} & set(settings)
    assert all(v is not None for v in settings.values())


def test_scheduler_settings_are_its_public_simple_attributes() -> None:
    opt = torch.optim.SGD(net().parameters(), lr=0.1)
    settings = scheduler_settings(torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5))
    assert settings["name"] == "StepLR"
    assert settings["step_size"] == 3 and settings["gamma"] == 0.5
    assert settings["base_lrs"] == [0.1]
    assert not {"optimizer", "last_epoch", "verbose"} & set(settings)
    assert not any(k.startswith("_") for k in settings)
    multi = scheduler_settings(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 5]))
    assert multi["name"] == "MultiStepLR"


def test_module_architecture_counts_parameters_and_fingerprints_the_structure() -> None:
    a, b = net(), net()
    arch = module_architecture(a)
    assert arch["params_total"] == (3 * 4 + 4) + (4 + 4) + (4 + 1)
    assert arch["params_trainable"] == arch["params_total"]
    assert arch["architecture"].startswith("sha256:") and len(arch["architecture"]) == len("sha256:") + 16
    assert module_architecture(b) == arch  # other values, same structure
    a[0].weight.requires_grad_(False)
    assert module_architecture(a)["params_trainable"] == arch["params_total"] - 12
    assert module_architecture(a)["architecture"] == arch["architecture"]
    wider = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.Linear(5, 1))
    assert module_architecture(wider)["architecture"] != arch["architecture"]


def test_attributes_read_what_exists_and_tolerate_failing_properties() -> None:
    class Obj:
        a = 1
        b = object()

        @property
        def broken(self) -> int:
            raise RuntimeError("not ready")

    assert attributes(Obj(), ("a", "broken", "missing")) == {"a": 1, "broken": None, "missing": None}
    assert attributes(Obj(), ("a", "b"), simple=True) == {"a": 1}


def test_importing_the_module_imports_no_framework() -> None:
    import subprocess
    import sys

    code = "import sys, modeltrack.capture.model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_one_architecture_format_lists_the_structure_and_diff_shows_what_changed() -> None:
    from modeltrack.capture.model import architecture, structure_changes
    from modeltrack.changelog import diff_records

    a = module_architecture(net())
    assert a["structure"][1:] == [
        ". Sequential",
        "0 Linear weight[4, 3] bias[4]",
        "1 BatchNorm1d weight[4] bias[4] running_mean[4] running_var[4] num_batches_tracked[]",
        "2 Linear weight[1, 4] bias[1]",
    ]
    wider = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    b = module_architecture(wider)
    assert structure_changes(a["structure"], b["structure"]) == {
        "added": ["0 Linear weight[5, 3] bias[5]"],
        "removed": ["0 Linear weight[4, 3] bias[4]"],
    }
    rec = {"model": "m", "params": {}, "data": {}, "metrics": {}, "environment": {}}
    d = diff_records({**rec, "version": 1, "info": a}, {**rec, "version": 2, "info": b})
    assert d["architecture"]["changed"] and d["architecture"]["added"] == ["0 Linear weight[5, 3] bias[5]"]
    # records written before structure lines existed still compare by fingerprint
    old = diff_records({**rec, "version": 1, "info": {"architecture": "mlp"}}, {**rec, "version": 2, "info": b})
    assert old["architecture"]["changed"] and old["architecture"]["added"] == []
    # the structure is capped, the fingerprint covers every line
    big = architecture([f"{i} Linear" for i in range(1000)])
    assert len(big["structure"]) == 400 and big["structure_lines"] == 1000
    assert big["architecture"] != architecture([f"{i} Linear" for i in range(999)])["architecture"]


def test_semantic_labels_a_wider_layer_is_minor_another_layer_is_major(tmp_path: Any) -> None:
    import modeltrack as mt

    store = str(tmp_path / "store")

    def run(*layers: Any) -> str:
        with mt.start("m", store=store) as v:
            v.set_framework("torch", **module_architecture(torch.nn.Sequential(*layers)))
            v.log_params(lr=0.1)
        return str(mt.show(v.ref, store=store)["label"])

    assert run(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)) == "1.0.0"
    assert run(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)) == "1.1.0"  # resized only
    changes = mt.show("m@v2", store=store)["changes"]
    assert changes["bump"] == "minor" and "0 Linear weight[8, 3] bias[8]" in changes["architecture"]["added"]
    assert run(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)) == "2.0.0"  # another kind of layer
    assert run(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Sigmoid()) == "3.0.0"
