"""Benchmark the S3 store (run by hand, not in CI).

1. Upload throughput of one large checkpoint (default 500 MB) to the same server:
   plain boto3 ``upload_file`` vs modeltrack at the store level (``S3Store.put_file``: one
   pass over the file, parallel multipart parts with CRC32 checked by the server; with the
   SHA-256 known, as from the spool, and without it: hashed on the way, staged, copied
   server-side) and end to end (``log_artifact`` + ``finish()``: copy into the spool,
   background upload, wait). Target: end to end at least 0.9 of the plain upload.
2. Training overhead: a loop that logs metrics every step and a checkpoint every epoch,
   without tracking, on a local store and on the S3 store (time of the loop, and of
   ``finish()``).

The server is moto on 127.0.0.1 started here (``tests/s3server.py``), or any S3-compatible
endpoint given with ``--endpoint`` (credentials from the usual AWS variables; ``--bucket``
must exist).

Usage:
    python bench/bench_s3.py                       # 500 MB, moto
    python bench/bench_s3.py --size-mb 50 --epochs 3 --quick
    python bench/bench_s3.py --endpoint http://127.0.0.1:9000 --bucket bench   # MinIO
    python bench/bench_s3.py --size-mb 300 --work-dir /mnt/xfs   # checkpoint and spool on XFS (reflinks)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_file(path: Path, size_mb: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(size_mb):
            # Vary every block so that nothing compresses or deduplicates.
            f.write(hashlib.sha256(i.to_bytes(8, "little")).digest() + block[32:])


def bench_upload(client: Any, bucket: str, src: Path, repeat: int) -> dict[str, Any]:
    """Interleaved runs of: plain boto3 ``upload_file`` (its defaults: 8 MiB parts, 10
    threads); ``S3Store.put_file`` with the SHA-256 given (what the spool's uploader does:
    the multipart upload completes straight to the key); ``put_file`` without it to a key
    named by the hash, as ``push`` does (hashed on the way, completed only if it matches);
    ``put_file`` without it to any other key (hashed while uploading to a staging key, then
    a server-side copy); a running version's
    ``log_artifact`` + ``finish()``. The best of ``repeat`` runs of each is kept."""
    import boto3.s3.transfer

    import modeltrack as mt
    from modeltrack.stores import open_store
    from modeltrack.stores.base import file_sha256

    size = src.stat().st_size
    sha, _ = file_sha256(src)
    times: dict[str, list[float]] = {"plain": [], "known": [], "addressed": [], "unknown": [], "e2e": []}
    for _ in range(repeat):
        key = f"bench/plain-{uuid.uuid4().hex}"
        t = time.perf_counter()
        client.upload_file(str(src), bucket, key, Config=boto3.s3.transfer.TransferConfig())
        times["plain"].append(time.perf_counter() - t)
        client.delete_object(Bucket=bucket, Key=key)

        uri = f"s3://{bucket}/bench-{uuid.uuid4().hex[:8]}"
        store = open_store(uri)
        t = time.perf_counter()
        store.put_file("blobs/x", src, sha256=sha)
        times["known"].append(time.perf_counter() - t)
        store.delete("blobs/x")
        t = time.perf_counter()
        store.put_file(f"blobs/sha256/{sha[:2]}/{sha}", src)
        times["addressed"].append(time.perf_counter() - t)
        store.delete(f"blobs/sha256/{sha[:2]}/{sha}")
        t = time.perf_counter()
        store.put_file("blobs/y", src)
        times["unknown"].append(time.perf_counter() - t)
        store.delete("blobs/y")

        v = mt.start("bench", store=uri)
        # From the training loop's call to the end of finish(): spool copy, upload, wait.
        t = time.perf_counter()
        v.log_artifact(src, kind="checkpoint")
        v.finish()
        times["e2e"].append(time.perf_counter() - t)
        store.delete_many(list(store.walk("")))
    best = {k: min(v) for k, v in times.items()}
    mb = size / 1e6
    out: dict[str, Any] = {"size_mb": round(mb, 1)}
    for name, label in (
        ("plain", "plain_boto3_upload_file"),
        ("known", "modeltrack_put_file_sha_known"),
        ("addressed", "modeltrack_put_file_content_addressed_key"),
        ("unknown", "modeltrack_put_file_staged_copy"),
        ("e2e", "modeltrack_log_artifact_finish"),
    ):
        out[f"{label}_s"] = round(best[name], 2)
        out[f"{label}_MBps"] = round(mb / best[name], 1)
        if name != "plain":
            out[f"{label}_ratio"] = round(best["plain"] / best[name], 3)
    out["all_runs_s"] = {k: [round(x, 2) for x in v] for k, v in times.items()}
    return out


def train(store: str | None, epochs: int, steps: int, ckpt_mb: int, work: Path) -> dict[str, float]:
    """A stand-in for training: a matrix product per step (native code that releases the
    GIL, as framework kernels do), metrics every step, a checkpoint every epoch."""
    import numpy as np

    import modeltrack as mt

    ckpt = work / "last.ckpt"
    payload = os.urandom(ckpt_mb * 1024 * 1024)
    a = np.random.default_rng(0).standard_normal((128, 128))
    v = mt.start("train-bench", store=store) if store else None
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for step in range(steps):
            a = np.tanh(a @ a.T / 128.0)
            if v is not None:
                v.log_metrics({"loss": 1.0 / (1 + step), "acc": step / steps}, step=epoch * steps + step, epoch=epoch)
        ckpt.write_bytes(payload[:-8] + epoch.to_bytes(8, "little"))
        if v is not None:
            v.log_artifact(ckpt, kind="checkpoint", name=f"epoch-{epoch}.ckpt", epoch=epoch)
    loop = time.perf_counter() - t0
    t1 = time.perf_counter()
    if v is not None:
        v.finish()
    return {"loop_s": round(loop, 3), "finish_s": round(time.perf_counter() - t1, 3)}


def local_only(args: argparse.Namespace) -> int:
    """The training stand-in on a local store against no tracking, alternating, three rounds."""
    work = Path(tempfile.mkdtemp(prefix="modeltrack-bench-", dir=args.work_dir))
    os.environ["MODELTRACK_CACHE"] = str(work / "cache")
    os.environ.pop("MODELTRACK_STRICT", None)
    try:
        rounds = []
        for i in range(3):
            none = train(None, args.epochs, args.steps, args.ckpt_mb, work)
            local = train(str(work / f"local-store-{i}"), args.epochs, args.steps, args.ckpt_mb, work)
            local["loop_overhead_pct"] = round(100 * (local["loop_s"] - none["loop_s"]) / none["loop_s"], 1)
            rounds.append({"no_tracking": none, "local_store": local})
        print(json.dumps({"training_local": rounds}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mb", type=int, default=500, help="checkpoint size for the upload benchmark")
    p.add_argument("--repeat", type=int, default=3, help="runs per upload method, interleaved (best is kept)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=300, help="steps per epoch (metrics logged every step)")
    p.add_argument("--ckpt-mb", type=int, default=20, help="checkpoint size in the training benchmark")
    p.add_argument("--endpoint", help="S3 endpoint to use instead of a local moto server")
    p.add_argument("--bucket", default="modeltrack-bench")
    p.add_argument("--quick", action="store_true", help="skip the upload benchmark")
    p.add_argument(
        "--work-dir",
        help="where the checkpoint and the spool live (default: the temporary directory); e.g. a "
        "reflink file system (XFS, btrfs), where the spool's private copy is O(1)",
    )
    p.add_argument(
        "--local-only", action="store_true", help="only the training stand-in, local store vs none (no S3 server)"
    )
    args = p.parse_args()
    if args.local_only:
        return local_only(args)

    work = Path(tempfile.mkdtemp(prefix="modeltrack-bench-"))
    os.environ["MODELTRACK_SPOOL"] = str(work / "spool")
    os.environ["MODELTRACK_CACHE"] = str(work / "cache")
    os.environ.pop("MODELTRACK_STRICT", None)
    server = None
    try:
        if args.endpoint:
            os.environ["AWS_ENDPOINT_URL"] = args.endpoint
            import boto3

            client = boto3.client("s3")
        else:
            from s3server import S3Server

            server = S3Server().launch()
            os.environ.update(server.env())
            client = server.client()
            client.create_bucket(Bucket=args.bucket)
        results: dict[str, Any] = {"server": args.endpoint or f"moto on {server.endpoint if server else ''}"}
        if not args.quick:
            src = work / "checkpoint.bin"
            make_file(src, args.size_mb)
            results["upload"] = bench_upload(client, args.bucket, src, args.repeat)
            src.unlink()
            print(json.dumps(results["upload"], indent=2), flush=True)
        runs = {
            "no_tracking": train(None, args.epochs, args.steps, args.ckpt_mb, work),
            "local_store": train(str(work / "local-store"), args.epochs, args.steps, args.ckpt_mb, work),
            "s3_store": train(
                f"s3://{args.bucket}/train-{uuid.uuid4().hex[:8]}", args.epochs, args.steps, args.ckpt_mb, work
            ),
        }
        base = runs["no_tracking"]["loop_s"]
        for r in runs.values():
            r["loop_overhead_pct"] = round(100 * (r["loop_s"] - base) / base, 1)
        results["training"] = runs
        print(json.dumps(results, indent=2))
    finally:
        if server is not None:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
