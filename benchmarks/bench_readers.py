"""Reader throughput and peak memory for the three public formats.

Writes ``--n-jets`` random but physical-looking jets per format with the
jettf writers (JetNet: five class files of 30 slots; Top Tagging: 200 slots;
quark/gluon: one ``.npz``) into a temporary directory, then reads each file
one-shot and in chunks. Every read runs in a fresh process so its peak
resident memory is its own: the table shows how far the peak RSS (Linux
``VmHWM``, reset before the read) rises above the RSS after imports, next to
the size of the resulting JetBatch. (``ru_maxrss`` cannot serve: Linux
carries it over from the parent through fork and exec.)

    python benchmarks/bench_readers.py --n-jets 100000 --chunk-size 10000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

# A few common final-state particles: PDG id, mass [GeV], charge [e], relative abundance.
PARTICLES = np.array([
    (22, 0.0, 0.0, 0.30),
    (211, 0.13957, 1.0, 0.22),
    (-211, 0.13957, -1.0, 0.22),
    (130, 0.49761, 0.0, 0.06),
    (321, 0.49368, 1.0, 0.05),
    (-321, 0.49368, -1.0, 0.05),
    (2112, 0.93957, 0.0, 0.04),
    (2212, 0.93827, 1.0, 0.04),
    (11, 0.000511, -1.0, 0.02),
])


def fake_jets(n_jets: int, max_constituents: int, mean_constituents: float, seed: int = 0):
    """Jets of pt in [550, 650] GeV, |eta| < 2, with exponentially shared pt and a 0.1-wide core."""
    from jettf.jets import JetBatch

    rng = np.random.default_rng(seed)
    count = np.clip(rng.poisson(mean_constituents, n_jets), 2, max_constituents)
    mask = np.arange(max_constituents)[None, :] < count[:, None]
    share = rng.exponential(1.0, mask.shape) * mask
    pt = share / share.sum(axis=1, keepdims=True) * rng.uniform(550.0, 650.0, (n_jets, 1))
    spread = 0.1 / np.sqrt(np.maximum(share, 0.05))
    eta = rng.uniform(-2.0, 2.0, (n_jets, 1)) + rng.normal(0.0, 1.0, mask.shape) * spread * 0.3
    phi = rng.uniform(-np.pi, np.pi, (n_jets, 1)) + rng.normal(0.0, 1.0, mask.shape) * spread * 0.3
    kind = rng.choice(len(PARTICLES), mask.shape, p=PARTICLES[:, 3] / PARTICLES[:, 3].sum())
    pid, mass, charge = PARTICLES[kind, 0], PARTICLES[kind, 1], PARTICLES[kind, 2]
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
    return JetBatch.from_ptetaphie(pt, eta, phi, energy, mask=mask, labels=rng.integers(0, 5, n_jets),
                                   class_names=("g", "q", "t", "w", "z"), pid=pid, charge=charge)


def write_samples(directory: Path, n_jets: int) -> dict:
    """Write one sample per format; returns {format: path to read}."""
    from jettf.io import write_jetnet, write_quark_gluon, write_top_tagging

    jetnet = fake_jets(n_jets, 60, 40, seed=1)
    write_jetnet(jetnet, directory / "jetnet")
    top = fake_jets(n_jets, 200, 50, seed=2)
    write_top_tagging(top.with_labels(top.labels % 2, ("qcd", "top")), directory / "train.h5")
    qg = fake_jets(n_jets, 120, 45, seed=3)
    write_quark_gluon(qg.with_labels(qg.labels % 2, ("gluon", "quark")), directory / "QG_jets.npz")
    return {"JetNet (30)": directory / "jetnet", "Top tagging": directory / "train.h5",
            "Quark/gluon": directory / "QG_jets.npz"}


def _read_in_fresh_process(fmt: str, path: str, chunk_size) -> tuple:
    """(wall s, CPU s, jets, peak RSS rise in MiB, JetBatch MiB or None) for one read."""
    from jettf.io import read_jetnet, read_quark_gluon, read_top_tagging

    read = {"JetNet (30)": read_jetnet, "Top tagging": read_top_tagging, "Quark/gluon": read_quark_gluon}[fmt]
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    baseline = _memory_kib("VmRSS")
    start, cpu_start = time.perf_counter(), time.process_time()
    result = read(path, chunk_size=chunk_size)
    if chunk_size is None:
        n_jets, size = len(result), sum(a.nbytes for a in vars(result).values() if isinstance(a, np.ndarray))
    else:
        n_jets, size = sum(len(batch) for batch in result), None
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = (_memory_kib("VmHWM") - baseline) / 1024
    return seconds, cpu_seconds, n_jets, peak, None if size is None else size / 2**20


def _memory_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux")


def measure(fmt: str, path: Path, chunk_size) -> tuple:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_read_in_fresh_process, fmt, str(path), chunk_size).result()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jets", type=int, default=100_000, help="jets per format (default 100000)")
    parser.add_argument("--chunk-size", type=int, default=10_000, help="jets per chunk for chunked reads")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_readers_") as tmp:
        start = time.perf_counter()
        samples = write_samples(Path(tmp), args.n_jets)
        print(f"wrote {args.n_jets} jets per format in {time.perf_counter() - start:.1f} s\n")
        header = ("| format | file MiB | read | jets | wall s | CPU s | jets/s (CPU) | peak RSS rise MiB "
                  "| JetBatch MiB |")
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for fmt, path in samples.items():
            files = [path] if path.is_file() else sorted(path.iterdir())
            file_mib = sum(f.stat().st_size for f in files) / 2**20
            for chunk_size in (None, args.chunk_size):
                seconds, cpu_seconds, n_jets, peak, size = measure(fmt, path, chunk_size)
                mode = "one-shot" if chunk_size is None else f"chunks of {chunk_size}"
                size_text = "-" if size is None else f"{size:.0f}"
                print(f"| {fmt} | {file_mib:.0f} | {mode} | {n_jets} | {seconds:.2f} | {cpu_seconds:.2f} | "
                      f"{n_jets / cpu_seconds:,.0f} | {peak:.0f} | {size_text} |")


if __name__ == "__main__":
    main()
