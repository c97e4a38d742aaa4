"""Distributed sweeps: keras-tuner's chief/worker mode (one oracle, many workers).

keras-tuner runs the oracle in a *chief* process that serves it over gRPC; each
*worker* asks it for a trial, trains it and reports the result, until the
oracle's budget is spent. The role comes from three environment variables,
read by keras-tuner itself:

- ``KERASTUNER_TUNER_ID``: ``chief`` for the oracle, a unique name per worker (``tuner0``, ``tuner1``, ...);
- ``KERASTUNER_ORACLE_IP``: the chief's address (the chief binds to it; ``0.0.0.0`` for every interface);
- ``KERASTUNER_ORACLE_PORT``: the chief's port.

Every process runs the same ``python -m tuning.search`` command. The chief
runs no trial: it writes ``search.json`` and the oracle state, waits until
the budget is spent and every worker has been told to stop, then writes
``trials.csv``/``trials.md``, ``best_config.json`` and ``objective.png``.
Workers train in ``OUT/keras_tuner/trial_<id>/`` on their own disk (a shared
folder is fine) and report the metrics to the chief over gRPC, so the chief's
tables are complete even without a shared filesystem. Build the dataset on
every machine first (workers wait for it, the chief builds it): ::

    python -m jettf.data build top_tagging_images --data-dir DATA

One chief and K workers on several machines (the chief at 10.0.0.1)::

    # chief
    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=0.0.0.0 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuning.search --hypermodel effnet_s --max-trials 100 --data-dir DATA --out sweeps/effnet
    # worker k = 0 .. K-1, one per machine or GPU
    KERASTUNER_TUNER_ID=tuner$k KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuning.search --hypermodel effnet_s --max-trials 100 --data-dir DATA --out sweeps/effnet

On one machine (e.g. one worker per GPU with ``CUDA_VISIBLE_DEVICES``), this
module starts them all on the loopback interface and waits::

    python -m tuning.distributed --workers 2 -- --hypermodel lenet --quick --out sweeps/lenet

A worker that dies leaves its trial "running" in the oracle; restart it with the
same ``KERASTUNER_TUNER_ID`` and it gets the same trial back, resuming from the
trial's last checkpoint. A restarted chief reloads the oracle and hands the
trials that were running out again. Sharing the trial folders is not required
for that resume, but a trial continued on another machine starts over.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["role", "free_port", "worker_env", "launch_local", "wait_all", "main"]

ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"


def role(environ=None) -> str:
    """``"standalone"`` (no chief configured), ``"chief"`` or ``"worker"``, as keras-tuner decides it."""
    env = os.environ if environ is None else environ
    if ENV_IP not in env:
        return "standalone"
    missing = [k for k in (ENV_PORT, ENV_ID) if k not in env]
    if missing:
        raise RuntimeError(f"{ENV_IP} is set but {', '.join(missing)} is not; set all three (see tuning.distributed)")
    return "chief" if "chief" in env[ENV_ID] else "worker"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def worker_env(tuner_id: str, port: int, ip: str = "127.0.0.1", base=None) -> dict:
    """The environment of a chief (``tuner_id="chief"``) or worker process."""
    env = dict(os.environ if base is None else base)
    env.update({ENV_ID: tuner_id, ENV_IP: ip, ENV_PORT: str(port)})
    return env


def launch_local(search_args: Sequence[str], workers: int, *, port: Optional[int] = None, env=None,
                 log_dir=None, cwd=None) -> list:
    """Start one chief and ``workers`` workers of ``python -m tuning.search SEARCH_ARGS`` on 127.0.0.1.

    Returns the ``subprocess.Popen`` objects, chief first. With ``log_dir``, each
    process writes ``<tuner id>.log`` there; otherwise they inherit stdout/stderr.
    """
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    port = port or free_port()
    cwd = cwd or Path(__file__).resolve().parents[1]
    procs = []
    for tuner_id in ["chief"] + [f"tuner{k}" for k in range(workers)]:
        out = None
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            out = open(Path(log_dir) / f"{tuner_id}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tuning.search", *search_args],
            env=worker_env(tuner_id, port, base=env), cwd=str(cwd), stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
        ))
        if out is not None:
            out.close()  # the child holds its own handle
    return procs


def wait_all(procs: list, timeout: Optional[float] = None) -> list:
    """Wait for every process (killing the rest when ``timeout`` seconds pass); returns their exit codes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    codes = []
    try:
        for p in procs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            codes.append(p.wait(timeout=left))
    except subprocess.TimeoutExpired:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()
        raise
    return codes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tuning.distributed",
        description="Start one chief and K workers of `python -m tuning.search` on this machine (loopback).",
        epilog="Everything after -- goes to python -m tuning.search, e.g. "
               "`python -m tuning.distributed --workers 2 -- --hypermodel lenet --quick --out sweeps/lenet`.")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--port", type=int, help="chief port on 127.0.0.1 (default: a free one)")
    p.add_argument("--log-dir", type=Path, help="write <tuner id>.log files here instead of the terminal")
    p.add_argument("search_args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    search_args = args.search_args[1:] if args.search_args[:1] == ["--"] else args.search_args
    if not search_args:
        p.error("give the search's arguments after --")
    procs = launch_local(search_args, args.workers, port=args.port, log_dir=args.log_dir)
    try:
        codes = wait_all(procs)
    except KeyboardInterrupt:
        for proc in procs:
            proc.terminate()
        raise
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
