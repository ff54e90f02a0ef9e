"""What a stored file really is, decided from its bytes (never from its name).

``load()`` uses this to decide whether loading an artifact can execute code: a pickle
renamed ``model.json`` is still a pickle. Only formats recognised positively as data are
treated as safe; anything unknown is treated as able to run code.

Formats (``sniff(path).name``)::

    keras        a Keras v3 archive (zip with config.json and metadata.json, no pickle inside)
    torch        a torch.save zip archive (holds data.pkl: unpickled on load)
    zip          another zip archive (pickles inside make it code-capable)
    pickle       a pickle stream (protocol 2 and newer start with 0x80)
    compressed   gzip / zlib / bz2 / xz / lzma / lz4 data (joblib's compressed pickles)
    hdf5         an HDF5 file (Keras legacy .h5 models and .weights.h5 files)
    safetensors  a safetensors file (a JSON header, then raw tensors)
    json         JSON text
    unknown      anything else (pickle protocols 0 and 1 look like arbitrary bytes)
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass

KERAS, TORCH, ZIP, PICKLE, COMPRESSED, HDF5, SAFETENSORS, JSON, UNKNOWN = (
    "keras",
    "torch",
    "zip",
    "pickle",
    "compressed",
    "hdf5",
    "safetensors",
    "json",
    "unknown",
)
#: formats whose bytes are data only: reading them cannot run code
DATA_ONLY = frozenset({KERAS, HDF5, SAFETENSORS, JSON})

_COMPRESSED_MAGIC = (
    b"\x1f\x8b",  # gzip
    b"BZh",  # bz2
    b"\xfd7zXZ\x00",  # xz
    b"\x5d\x00\x00",  # lzma (alone)
    b"\x04\x22\x4d\x18",  # lz4 frame
    b"\x28\xb5\x2f\xfd",  # zstd
)
_ZLIB_SECOND = (0x01, 0x5E, 0x9C, 0xDA)


@dataclass(frozen=True)
class Sniffed:
    """The result of :func:`sniff`."""

    name: str
    #: loading it with a pickle-based loader, or at all, may execute code
    executes_code: bool
    #: a few words for error messages ("a pickle stream", "a Keras archive")
    description: str


def sniff(path: str | os.PathLike[str]) -> Sniffed:
    """Identify the content of ``path`` from its first bytes (and a zip's member names).

    Args:
        path: a local regular file.

    Returns:
        what the file is, and whether loading it can execute code.
    """
    with open(path, "rb") as f:
        head = f.read(64)
        size = os.fstat(f.fileno()).st_size
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _sniff_zip(path)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Sniffed(PICKLE, True, f"a pickle stream (protocol {head[1]})")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return Sniffed(HDF5, False, "an HDF5 file")
    if any(head.startswith(m) for m in _COMPRESSED_MAGIC) or (
        len(head) >= 2 and head[0] == 0x78 and head[1] in _ZLIB_SECOND
    ):
        return Sniffed(COMPRESSED, True, "compressed data (e.g. a compressed joblib pickle)")
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 8 + header_len <= size and _json_header(path, header_len):
            return Sniffed(SAFETENSORS, False, "a safetensors file")
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"[") and _is_json(path, size):
        return Sniffed(JSON, False, "JSON text")
    return Sniffed(UNKNOWN, True, "data of an unknown format (it may be a pickle)")


def _sniff_zip(path: str | os.PathLike[str]) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return Sniffed(UNKNOWN, True, "a damaged zip archive")
    pickles = [n for n in names if n.endswith((".pkl", ".pickle")) or n.rsplit("/", 1)[-1] == "data.pkl"]
    if any(n.rsplit("/", 1)[-1] == "data.pkl" for n in names):
        return Sniffed(TORCH, True, "a torch.save archive (it holds a pickle)")
    if pickles:
        return Sniffed(ZIP, True, f"a zip archive holding pickles ({pickles[0]})")
    if "config.json" in names and "metadata.json" in names:
        return Sniffed(KERAS, False, "a Keras archive")
    return Sniffed(ZIP, True, "a zip archive of an unknown kind")


def _json_header(path: str | os.PathLike[str], length: int) -> bool:
    if length > 100 * 1024 * 1024:
        return False
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(length)
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def _is_json(path: str | os.PathLike[str], size: int) -> bool:
    if size > 64 * 1024 * 1024:
        return False
    with open(path, "rb") as f:
        raw = f.read()
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return True


__all__ = ["DATA_ONLY", "Sniffed", "sniff"]
