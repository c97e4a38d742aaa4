"""Helpers shared by several test modules: processes from /proc and a synthetic pile-up library."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def proc_stat(pid):
    """(state, parent pid, start time) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), fields[19]


def children(pid):
    """{child pid: start time} of the running children of ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) and stat[1] == pid and stat[0] not in "ZX":
            found[int(entry)] = stat[2]
    return found


def survivors(processes):
    """The processes (pid -> start time) still running: not gone, not a zombie, not a reused pid."""
    return [pid for pid, start in processes.items()
            if (stat := proc_stat(pid)) is not None and stat[2] == start and stat[0] not in "ZX"]


def synthetic_library(n_events=50, per_event=40, seed=0, sqrt_s=14000.0):
    """A MinBiasLibrary of soft particles (pt 0.3 + exponential(0.8) GeV) uniform in |eta| < 4 (no Pythia)."""
    from jettf.detector import MinBiasLibrary

    rng = np.random.default_rng(seed)
    event = np.repeat(np.arange(n_events), per_event)
    eta = rng.uniform(-4, 4, len(event))
    order = np.lexsort((eta, event))
    pt = rng.exponential(0.8, len(event)) + 0.3
    pid = rng.choice([211, -211, 22, 130], len(event))
    return MinBiasLibrary(pt[order], eta[order], rng.uniform(-np.pi, np.pi, len(event))[order],
                          (pt * np.cosh(eta))[order], pid[order], np.arange(n_events + 1) * per_event, sqrt_s, seed)
