"""Benchmark listing a model with many versions on S3 (run by hand, not in CI).

Setup: one real version made by modeltrack, then ``--versions - 1`` more written directly as
its ``claim.json`` and ``final.json`` under the next numbers (16 writers in parallel; making
10,000 versions through ``start``/``finish`` on the local moto server would take many
minutes and measure version creation, not listing).

Then, each in a fresh process-level state (new ``Repo``, new empty ``MODELTRACK_CACHE``
unless said):

1. ``cold, no packs``: ``MODELTRACK_SUMMARY_PACKS=0``, empty cache: one ``final.json`` per
   version, read ``MODELTRACK_LIST_CONCURRENCY`` at a time (``--sequential`` adds the same
   with 1 at a time, the behaviour before).
2. ``cold, first listing``: empty cache, no pack yet: the same reads, then the summary packs
   are written (``summaries/MODEL/BLOCK.json``).
3. ``cold``: empty cache (another machine), packs present: the target, < 3 s for 10,000.
4. ``warm``: the local SQLite index filled by 3.

Also the number of requests each listing sent (counted with a botocore event hook).

Usage:
    python bench/bench_s3_listing.py                    # 10,000 versions, moto on 127.0.0.1
    python bench/bench_s3_listing.py --versions 2000 --sequential
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_versions(uri: str, model: str, count: int) -> float:
    """One real version, then ``count - 1`` written directly; returns the seconds taken."""
    import modeltrack as mt
    from modeltrack.stores import open_store

    t = time.perf_counter()
    v = mt.start(model, store=uri)
    v.log_metrics({"loss": 1.0, "acc": 0.5}, step=0)
    v.finish()
    store = open_store(uri)
    claim = json.loads(store.read(f"models/{model}/versions/1/claim.json"))
    final = json.loads(store.read(f"models/{model}/versions/1/final.json"))

    def one(n: int) -> None:
        store.write(f"models/{model}/versions/{n}/claim.json", json.dumps({**claim, "version": n}).encode())
        metrics = {k: {**m, "last": m["last"] / n} for k, m in final["metrics"].items()}
        store.write(f"models/{model}/versions/{n}/final.json", json.dumps({**final, "metrics": metrics}).encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(2, count + 1)))
    return time.perf_counter() - t


def count_requests() -> dict[str, int]:
    from modeltrack.stores.s3 import s3_client

    counts: dict[str, int] = {}

    def seen(model: Any, **_kw: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    s3_client().meta.events.register("before-call.s3", seen)
    return counts


def list_once(uri: str, model: str, work: Path, *, cache: str | None = None, **env: str) -> dict[str, Any]:
    import modeltrack as mt

    saved = {k: os.environ.get(k) for k in ("MODELTRACK_CACHE", *env)}
    os.environ["MODELTRACK_CACHE"] = cache or str(work / f"cache-{uuid.uuid4().hex[:8]}")
    os.environ.update(env)
    counts = count_requests()
    try:
        t = time.perf_counter()
        rows = mt.versions(model, store=uri)
        took = time.perf_counter() - t
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        counts_copy = dict(counts)
        counts.clear()
    return {"s": round(took, 2), "versions": len(rows), "requests": counts_copy}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--versions", type=int, default=10_000)
    p.add_argument("--sequential", action="store_true", help="also list with one read at a time (slow)")
    p.add_argument("--endpoint", help="S3 endpoint instead of a local moto server")
    p.add_argument("--bucket", default="modeltrack-bench")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="modeltrack-bench-list-"))
    os.environ["MODELTRACK_SPOOL"] = str(work / "spool")
    os.environ["MODELTRACK_CACHE"] = str(work / "cache-setup")
    os.environ.pop("MODELTRACK_STRICT", None)
    server = None
    try:
        if args.endpoint:
            os.environ["AWS_ENDPOINT_URL"] = args.endpoint
        else:
            from s3server import S3Server

            server = S3Server().launch()
            os.environ.update(server.env())
            server.client().create_bucket(Bucket=args.bucket)
        uri = f"s3://{args.bucket}/list-{uuid.uuid4().hex[:8]}"
        out: dict[str, Any] = {"server": args.endpoint or "moto on 127.0.0.1", "versions": args.versions}
        out["setup_s"] = round(make_versions(uri, "m", args.versions), 1)
        print(json.dumps(out), flush=True)
        if args.sequential:
            out["cold_no_packs_sequential"] = list_once(
                uri, "m", work, MODELTRACK_SUMMARY_PACKS="0", MODELTRACK_LIST_CONCURRENCY="1"
            )
            print(json.dumps(out["cold_no_packs_sequential"]), flush=True)
        out["cold_no_packs_parallel"] = list_once(uri, "m", work, MODELTRACK_SUMMARY_PACKS="0")
        print(json.dumps(out["cold_no_packs_parallel"]), flush=True)
        out["cold_first_listing_writes_packs"] = list_once(uri, "m", work)
        cache = str(work / "cache-warm")
        out["cold_with_packs"] = list_once(uri, "m", work, cache=cache)
        out["warm_local_index"] = list_once(uri, "m", work, cache=cache)
        print(json.dumps(out, indent=2))
    finally:
        if server is not None:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
