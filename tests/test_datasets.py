"""Dataset fingerprints (modeltrack.capture.datasets) on real torch datasets and loaders."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import ConcatDataset, DataLoader, Dataset, IterableDataset, Subset, TensorDataset  # noqa: E402

import modeltrack as mt  # noqa: E402
from modeltrack.capture import datasets  # noqa: E402
from modeltrack.capture.data import fingerprint  # noqa: E402
from modeltrack.capture.datasets import (  # noqa: E402
    dataset_arrays,
    fingerprint_dataset,
    fingerprint_loader,
    flatten_loaders,
)

X = torch.arange(24, dtype=torch.float32).reshape(6, 4)
Y = torch.arange(6, dtype=torch.int64).reshape(6, 1)
TENSORS = TensorDataset(X, Y)


class Squares(Dataset):
    """Map-style, items ``(tensor, int)``; counts the items read."""

    def __init__(self, n: int = 5) -> None:
        self.n = n
        self.reads = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        self.reads += 1
        return torch.tensor([float(i)]), i * i


class Words(Squares):
    def __getitem__(self, i: int) -> Any:
        self.reads += 1
        return {"text": "hello"}


class Stream(IterableDataset):
    def __init__(self) -> None:
        self.started = False

    def __iter__(self) -> Any:
        self.started = True
        return iter([torch.zeros(2)])


def test_a_tensor_dataset_is_hashed_whole() -> None:
    rec = fingerprint_dataset(TENSORS)
    assert rec == fingerprint((X, Y))
    assert rec["fingerprint"].startswith("sha256:") and rec["parts"] == [[6, 4], [6, 1]]
    changed = TensorDataset(X + 1, Y)
    assert fingerprint_dataset(changed)["fingerprint"] != rec["fingerprint"]


def test_a_loader_gives_its_datasets_fingerprint_and_no_sizes() -> None:
    rec = fingerprint_loader(DataLoader(TENSORS, batch_size=4, shuffle=True))
    assert rec == fingerprint_dataset(TENSORS)
    assert "batches" not in rec and "reason" not in rec


def test_subset_and_concat_are_hashed_through_their_bases() -> None:
    cols, why = dataset_arrays(Subset(TENSORS, [0, 2]))
    assert why == "" and cols is not None
    assert torch.equal(cols[0], X[[0, 2]]) and torch.equal(cols[1], Y[[0, 2]])
    cols, _ = dataset_arrays(ConcatDataset([TENSORS, Subset(TENSORS, [5])]))
    assert cols is not None and torch.equal(cols[0], torch.cat([X, X[5:]]))
    other = TensorDataset(X)
    assert dataset_arrays(ConcatDataset([TENSORS, other])) == (None, "concatenated datasets with different fields")
    assert "dict" in dataset_arrays(ConcatDataset([TENSORS, Words()]))[1]


def test_a_map_style_dataset_is_stacked_item_by_item() -> None:
    ds = Squares()
    cols, why = dataset_arrays(ds)
    assert why == "" and cols is not None and ds.reads == 5
    assert cols[0].shape == (5, 1) and cols[1].tolist() == [0, 1, 4, 9, 16]
    assert fingerprint_dataset(Squares())["fingerprint"] == fingerprint(cols)["fingerprint"]


def test_a_non_tensor_dataset_says_why_with_sizes() -> None:
    rec = fingerprint_dataset(Words())
    assert rec["fingerprint"] is None and "dict" in rec["reason"]
    assert rec["dataset"] == "Words" and rec["size"] == 5
    rec = fingerprint_loader(DataLoader(Words(), batch_size=2))
    assert rec["fingerprint"] is None and rec["batches"] == 3 and rec["batch_size"] == 2 and rec["size"] == 5
    assert "not a map-style dataset" in fingerprint_dataset(object())["reason"]


def test_an_iterable_dataset_is_never_consumed() -> None:
    ds = Stream()
    rec = fingerprint_loader(DataLoader(ds, batch_size=4))
    assert rec["fingerprint"] is None and "iterable" in rec["reason"] and rec["dataset"] == "Stream"
    assert not ds.started


def test_odd_items_give_reasons() -> None:
    class Ragged(Squares):
        def __getitem__(self, i: int) -> Any:
            return torch.zeros(i + 1)

    class Uneven(Squares):
        def __getitem__(self, i: int) -> Any:
            return (torch.zeros(1),) * (1 + i % 2)

    assert dataset_arrays(Ragged()) == (None, "items have varying shapes")
    assert dataset_arrays(Uneven()) == (None, "items have a varying number of fields")
    assert dataset_arrays(Squares(0)) == (None, "empty dataset")
    assert "has no dataset" in fingerprint_loader([1, 2])["reason"]


def test_a_huge_dataset_is_refused_without_reading_an_item(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = Squares(datasets.MAX_HASH_ITEMS + 1)
    rec = fingerprint_dataset(ds)
    assert rec["fingerprint"] is None and f"more than {datasets.MAX_HASH_ITEMS}" in rec["reason"]
    assert rec["size"] == datasets.MAX_HASH_ITEMS + 1 and ds.reads == 0
    monkeypatch.setattr(datasets, "MAX_HASH_ITEMS", 3)  # the default is read at call time
    assert "more than 3" in dataset_arrays(Squares(4))[1]
    assert dataset_arrays(Squares(4), max_items=4)[0] is not None


def test_slow_item_by_item_hashing_stops_at_the_time_limit() -> None:
    class Slow(Squares):
        def __getitem__(self, i: int) -> Any:
            time.sleep(0.02)
            return super().__getitem__(i)

    ds = Slow(1000)
    started = time.monotonic()
    cols, why = dataset_arrays(ds, max_seconds=0.1)
    assert cols is None and "took over 0.1 s" in why
    assert ds.reads < 100 and time.monotonic() - started < 5


def test_flatten_loaders_names_each_loader() -> None:
    a, b = object(), object()
    assert flatten_loaders("train", a) == [("train", a)]
    assert flatten_loaders("val", [a]) == [("val", a)]
    assert flatten_loaders("val", (a, b)) == [("val/0", a), ("val/1", b)]
    assert flatten_loaders("val", {"x": a, "y": b}) == [("val/x", a), ("val/y", b)]


def test_the_records_are_what_a_version_stores() -> None:
    store = "memory://capture-datasets"
    with mt.start("ds", store=store) as v:
        v.log_data("direct", (X, Y))
        v.log_data_info("via", **fingerprint_loader(DataLoader(TENSORS, batch_size=4)))
        v.log_data_info("words", **fingerprint_loader(DataLoader(Words(), batch_size=2)))
    by = {d["name"]: d for d in mt.show("ds", store=store)["data"]}
    assert {k: val for k, val in by["via"].items() if k != "name"} == {
        k: val for k, val in by["direct"].items() if k != "name"
    }
    assert by["words"]["fingerprint"] is None and by["words"]["batches"] == 3 and "dict" in by["words"]["reason"]


def test_without_torch_imported_numpy_items_are_stacked_and_torch_stays_out() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from modeltrack.capture.datasets import dataset_arrays, fingerprint_dataset\n"
        "class Rows:\n"
        "    def __len__(self): return 3\n"
        "    def __getitem__(self, i): return np.full(2, i, dtype=np.float32), i\n"
        "cols, why = dataset_arrays(Rows())\n"
        "assert why == '' and type(cols[0]).__name__ == 'ndarray', (cols, why)\n"
        "assert cols[0].shape == (3, 2) and cols[1].tolist() == [0, 1, 2]\n"
        "assert fingerprint_dataset(Rows())['fingerprint'].startswith('sha256:')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
