"""Small shared helpers: atomic file writes, checksums, seeds, JSON I/O.

Every long job in jettf writes its outputs through :func:`atomic_path` so a
file (or directory) either appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

import numpy as np

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_path", "sha256_file", "shard_seeds", "write_json", "read_json"]


@contextlib.contextmanager
def atomic_path(path: PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    Works for files and directories. On an exception the temporary is removed
    and ``path`` is left untouched. With ``overwrite=False`` an existing
    ``path`` raises ``FileExistsError`` before anything is written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists and will not be overwritten")
    # Keep the suffix: Keras, h5py and pandas choose the format from it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp_name)  # the caller creates a file or a directory under this name
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and path.exists():
            raise FileExistsError(f"{path} appeared while it was being written; not overwriting it")
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def sha256_file(path: PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shard_seeds(seed: int, n_shards: int) -> list:
    """Independent, reproducible per-shard seeds derived from one master seed.

    Uses numpy's SeedSequence so shard ``i`` gets the same seed whatever the
    number of workers. Values fit Pythia's ``Random:seed`` range (< 900,000,000).
    """
    children = np.random.SeedSequence(seed).spawn(n_shards)
    return [int(c.generate_state(1)[0] % 900_000_000) + 1 for c in children]


def write_json(path: PathLike, obj) -> None:
    """Write JSON atomically with stable formatting."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: PathLike):
    """Read a JSON file, naming the file in any error."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")
