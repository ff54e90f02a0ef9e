"""The framework-free data helpers of modeltrack.capture.data, without Keras."""

from __future__ import annotations

import numpy as np
import pytest

from modeltrack.capture import data as cd


def test_data_kind_names_module_and_class():
    assert cd.data_kind(np.zeros(2)) == "numpy.ndarray"
    assert cd.data_kind(None) == "builtins.NoneType"
    assert cd.data_kind(x for x in ()) == "builtins.generator"


def test_can_fingerprint_arrays_and_containers_of_them():
    a = np.arange(6).reshape(2, 3)
    assert cd.can_fingerprint(a)
    assert cd.can_fingerprint([a, a]) and cd.can_fingerprint((a,))
    assert cd.can_fingerprint({"img": a, "meta": [a, {"z": a}]})


@pytest.mark.parametrize(
    "obj",
    [None, 3, 1.5, "text", b"bytes", [], (), {}, [1, 2, 3], {"a": 1}, [np.zeros(2), [1]]],
    ids=repr,
)
def test_can_fingerprint_refuses_non_arrays(obj):
    assert not cd.can_fingerprint(obj)


def test_can_fingerprint_refuses_generators_and_datasets():
    class Batches:
        shape = (4, 2)  # a shape alone does not make a foreign object an array

        def __len__(self):
            return 4

    assert not cd.can_fingerprint(x for x in range(3))
    assert not cd.can_fingerprint(Batches())
    assert not cd.can_fingerprint(iter([np.zeros(2)]))


def test_can_fingerprint_torch_tensors():
    torch = pytest.importorskip("torch")
    t = torch.arange(4.0)
    assert cd.can_fingerprint(t) and cd.can_fingerprint({"x": t, "y": [t]})
    data_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(t), batch_size=2)
    assert not cd.can_fingerprint(data_loader)


class _ForeignArray:
    """Stands in for a JAX / TensorFlow array: recognised by module name."""

    __module__ = "jaxlib.xla_extension"

    def __init__(self, values):
        self.values = values
        self.shape = (len(values),)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)


def test_to_host_converts_foreign_arrays_only():
    foreign = _ForeignArray([1.0, 2.0])
    out = cd.to_host(foreign)
    assert isinstance(out, np.ndarray) and out.tolist() == [1.0, 2.0]
    a = np.zeros(3)
    assert cd.to_host(a) is a
    nested = cd.to_host({"x": (foreign, a), "y": [foreign]})
    assert isinstance(nested["x"], tuple) and isinstance(nested["x"][0], np.ndarray) and nested["x"][1] is a
    assert isinstance(nested["y"], list) and isinstance(nested["y"][0], np.ndarray)
    assert cd.to_host(None) is None and cd.to_host(5) == 5


def test_to_host_uses_the_given_converter():
    seen = []

    def convert(obj):
        seen.append(obj)
        return np.array([9])

    foreign = _ForeignArray([1])
    assert cd.to_host([foreign, np.zeros(1)], convert)[0].tolist() == [9]
    assert seen == [foreign]


def test_to_host_leaves_torch_tensors():
    torch = pytest.importorskip("torch")
    t = torch.ones(2)
    assert cd.to_host(t) is t and cd.to_host([t])[0] is t


def test_split_xy():
    x, y, w = np.zeros(2), np.ones(2), np.full(2, 0.5)
    assert cd.split_xy((x, y)) == (x, y)
    assert cd.split_xy([x, y, w]) == (x, y)
    gen = (i for i in range(2))
    assert cd.split_xy(gen) == (gen, None)
    assert cd.split_xy(None) == (None, None)
    assert cd.split_xy((x,)) == ((x,), None)
    four = (x, y, w, w)
    assert cd.split_xy(four) == (four, None)


def test_unfingerprinted_records_type_length_and_reason():
    rec = cd.unfingerprinted([object()] * 4, hint="pass data= to fingerprint it", steps=2)
    assert rec == {
        "fingerprint": None,
        "pytype": "builtins.list",
        "length": 4,
        "steps": 2,
        "reason": "builtins.list is not an array or tensor: its content cannot be fingerprinted without "
        "reading it again; pass data= to fingerprint it",
    }
    gen = cd.unfingerprinted(x for x in range(3))
    assert gen["length"] is None and gen["pytype"] == "builtins.generator"
    assert gen["reason"].endswith("without reading it again")


def test_fingerprint_or_reason_hashes_arrays():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    rec = cd.fingerprint_or_reason(a)
    assert rec == cd.fingerprint(a) and rec["fingerprint"].startswith("sha256:")
    assert rec["shape"] == [2, 3] and rec["dtype"] == "int32"
    assert cd.fingerprint_or_reason(a + 1)["fingerprint"] != rec["fingerprint"]
    assert cd.fingerprint_or_reason({"b": a, "a": a})["fingerprint"] == cd.fingerprint({"a": a, "b": a})["fingerprint"]


def test_fingerprint_or_reason_converts_foreign_arrays():
    rec = cd.fingerprint_or_reason(_ForeignArray([1.0, 2.0]))
    assert rec["fingerprint"] == cd.fingerprint(np.array([1.0, 2.0]))["fingerprint"]


def test_fingerprint_or_reason_torch_matches_fingerprint():
    torch = pytest.importorskip("torch")
    t = torch.arange(6).reshape(3, 2)
    assert cd.fingerprint_or_reason(t) == cd.fingerprint(t)


@pytest.mark.parametrize("obj", [None, (i for i in range(3)), {}, {"a": 1}, [1, 2]], ids=repr)
def test_fingerprint_or_reason_says_why_not(obj):
    rec = cd.fingerprint_or_reason(obj, hint="HINT", steps=7)
    assert rec["fingerprint"] is None and rec["steps"] == 7
    assert rec["pytype"] == cd.data_kind(obj) and rec["reason"].endswith("; HINT")


def test_records_go_to_log_data_info(tmp_path):
    import modeltrack as mt

    store = f"file://{tmp_path}"
    with mt.start("capture-data", store=store) as v:
        v.log_data_info("train.x", **cd.fingerprint_or_reason(np.ones(3)))
        v.log_data_info("val", **cd.fingerprint_or_reason(x for x in range(2)))
    data = {d["name"]: d for d in mt.show("capture-data@v1", store=store)["data"]}
    assert data["train.x"]["fingerprint"] == cd.fingerprint(np.ones(3))["fingerprint"]
    assert data["train.x"]["shape"] == [3]
    assert data["val"]["fingerprint"] is None and data["val"]["shape"] is None
    assert "generator" in data["val"]["reason"]
