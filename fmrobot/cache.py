"""Derived artefacts kept between runs, keyed by the content of what they were derived from.

A key is a hash over every input of a derivation: the bytes of the files it read (model
weights, tokenizer), the values it was given (a vocabulary, prompt templates) and a version
string the deriving code bumps when its output would change. Changed inputs give another key,
so a stale entry is never found. An entry stores its key and a hash of its payload, and is
checked against both on every read: a truncated, corrupt or mislabelled file is a miss, and
the caller derives the artefact again and overwrites it.

Hashing a large file (90 MB of text-tower weights: ~0.25 s) on every start would cost more
than it saves, so a file's digest is remembered beside the cache together with its size,
modification time and inode, and recomputed whenever any of those differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fmrobot.paths import cache_root

_DIGESTS = "file-digests.json"
_CHUNK = 1 << 20


def content_key(*parts: Any) -> str:
    """A hex key over `parts`: strings, bytes, and JSON-serialisable values (a file enters through
    `file_digest`/`folder_digest`, so its bytes, not its path, make the key)."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: ("ab", "c") differs from ("a", "bc")
        h.update(data)
    return h.hexdigest()


def file_digest(path: str | Path, cache_dir: str | None = None) -> str:
    """sha256 of a file's bytes, remembered while its size, mtime and inode stay the same."""
    path = Path(path).resolve()
    stat = path.stat()
    signature = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    memo_path = cache_root(cache_dir) / _DIGESTS
    memo = _read_json(memo_path)
    known = memo.get(str(path))
    if isinstance(known, dict) and known.get("signature") == signature and isinstance(known.get("sha256"), str):
        return known["sha256"]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    memo[str(path)] = {"signature": signature, "sha256": digest}
    _write_atomic(memo_path, json.dumps(memo, indent=0).encode())
    return digest


def folder_digest(folder: str | Path, cache_dir: str | None = None) -> str:
    """A digest over every file under `folder` (relative names and contents)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return content_key(*[(str(p.relative_to(folder)), file_digest(p, cache_dir)) for p in files])


def load_tensors(namespace: str, key: str, cache_dir: str | None = None) -> dict[str, Any] | None:
    """The tensors stored under `key`, or None when there is no entry or it does not check out."""
    path = entry_path(namespace, key, cache_dir)
    if not path.is_file():
        return None
    try:
        from safetensors import SafetensorError, safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (a safe_open is no dict)
    except (SafetensorError, OSError, ValueError, RuntimeError):  # a truncated or overwritten file
        return None
    if metadata.get("key") != key or metadata.get("payload") != _payload_digest(tensors):
        return None
    return tensors


def save_tensors(namespace: str, key: str, tensors: dict[str, Any], cache_dir: str | None = None) -> Path | None:
    """Store `tensors` under `key` (written beside, then renamed). A cache that cannot be written
    (a read-only home) costs the next run the derivation again, not this run its result."""
    from safetensors.torch import save

    contiguous = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    path = entry_path(namespace, key, cache_dir)
    try:
        _write_atomic(path, save(contiguous, metadata={"key": key, "payload": _payload_digest(contiguous)}))
    except OSError:
        return None
    return path


def entry_path(namespace: str, key: str, cache_dir: str | None = None) -> Path:
    return cache_root(cache_dir) / namespace / f"{key[:40]}.safetensors"


def _payload_digest(tensors: dict[str, Any]) -> str:
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions(*distributions: str) -> list[str]:
    """Installed versions of packages whose numerics a derivation depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in distributions:
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name}==none")
    return found
