"""Small shared helpers: atomic file writes, checksums, seeds, JSON I/O, signals and worker processes.

Every long job in jettf writes its outputs through :func:`atomic_path` so a
file (or directory) either appears complete or not at all. Every long-running
command calls :func:`sigterm_as_keyboard_interrupt` in its ``main()``, so
``kill`` (SIGTERM) stops it as cleanly as Ctrl-C; process pools start their
workers with :func:`init_worker` and run jobs through :func:`worker_call`, so
workers never outlive their parent, even when it is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, Union

import numpy as np

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_path", "sha256_file", "shard_seeds", "write_json", "read_json", "sigterm_as_keyboard_interrupt",
           "init_worker", "worker_call", "stop_pool"]


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


# ------------------------------------------------------------------ signals
class sigterm_as_keyboard_interrupt:  # noqa: N801  (used like a function or a context manager)
    """Make SIGTERM raise KeyboardInterrupt in the main thread, so ``kill PID`` stops a job like Ctrl-C.

    Call it at the start of a command's ``main()``: the handler stays installed
    (``sigterm_as_keyboard_interrupt()``), or for a block only (``with
    sigterm_as_keyboard_interrupt(): ...`` restores the previous handler).
    Interrupted jobs then unwind through their ``finally`` clauses: temporary
    files of :func:`atomic_path` are removed, finished shards are kept, and pool
    workers are stopped. Outside the main thread (where Python cannot install
    handlers) it does nothing.
    """

    def __init__(self):
        self.installed = threading.current_thread() is threading.main_thread()
        self.previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if self.installed else None

    def __enter__(self) -> "sigterm_as_keyboard_interrupt":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
            self.installed = False


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


# ---------------------------------------------------------- worker processes
_in_job = False  # set in pool workers while worker_call runs a job
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_ORPHAN_POLL_SECONDS = 0.5


def init_worker(parent_pid: int, death_signal: bool = True) -> None:
    """Initializer of pool workers: die with the parent, leave Ctrl-C to it, unwind on SIGTERM.

    Pass ``(os.getpid(), threading.current_thread() is threading.main_thread())``
    from the parent that creates the pool. The worker

    - ignores SIGINT: Ctrl-C reaches the whole process group, and the parent
      stops the pool itself (:func:`stop_pool`);
    - on SIGTERM, unwinds the job it runs (:func:`worker_call`: ``finally``
      clauses and :func:`atomic_path` clean up) and exits, or exits at once
      when idle; it never starts another job;
    - gets SIGTERM when the parent dies, however it dies (SIGKILL included):
      on Linux from the kernel (``prctl(PR_SET_PDEATHSIG)``; only when the
      thread that starts the workers is the parent's main thread, since the
      signal follows the creating thread), and everywhere from a thread that
      polls ``os.getppid()`` (orphans are re-parented).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)
    if death_signal and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # no libc prctl: the polling thread still covers it
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(128 + int(signal.SIGTERM))
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="jettf-orphan-watch", daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_ORPHAN_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread: unwind the job, then exit


def _worker_sigterm(signum, frame):
    if _in_job:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
    os._exit(128 + signum)  # idle (waiting for a job): nothing to clean up


def worker_call(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a pool worker started by :func:`init_worker`.

    On SIGTERM the job unwinds (its ``finally`` clauses run, so
    :func:`atomic_path` leaves no partial file) and the worker process exits,
    so it neither reports back to nor waits for a parent that may be gone.
    Call it through a module-level function (pools pickle the callable).
    """
    global _in_job
    _in_job = True
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        os._exit(128 + int(signal.SIGTERM))
    finally:
        _in_job = False


def stop_pool(pool) -> None:
    """Stop a ``concurrent.futures.ProcessPoolExecutor`` now: queued jobs cancelled, running ones interrupted.

    Running jobs get SIGTERM (workers made with :func:`init_worker` unwind and
    exit); returns when the workers are gone. ``pool.shutdown`` alone would
    wait for every job already handed to a worker.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()  # SIGTERM
    pool.shutdown(wait=True, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=10)
