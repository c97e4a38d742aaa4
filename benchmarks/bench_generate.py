"""Speed and physics sanity of the Pythia 8 + FastJet generator (jettf.generate).

Prints, per sample and class: jets/s and events/s of one worker (wall and per
CPU second, Pythia initialisation included), the selection efficiency, the jet
mass median and mode (top ~175, W ~80, Z ~91 GeV expected), and the mean
constituent count; then jets/s of ``generate_sample`` with all workers. With
``--pthat-scan`` it also generates the samples whose pTHatMin is our choice
with a lower pTHatMin and prints which fractions of the selected jets lie below
300 ... 500 GeV of pTHat, i.e. what the card's pTHatMin cuts away.

    python benchmarks/bench_generate.py [--n-jets 150] [--samples jetnet top_tagging quark_gluon]
                                        [--workers 2] [--pthat-scan [--scan-jets 800]]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time

import numpy as np

from jettf.generate import generate_sample, get_card
from jettf.generate.pythia import class_seeds, generate_shard
from jettf.utils import read_json


def half_sample_mode(values: np.ndarray) -> float:
    """Robust mode estimate (Bickel's half-sample mode): repeatedly keep the densest half."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    while len(x) > 3:
        half = (len(x) + 1) // 2
        widths = x[half - 1:] - x[: len(x) - half + 1]
        start = int(np.argmin(widths))
        x = x[start:start + half]
    return float(x.mean())


def per_class_table(samples, n_jets: int, seed: int) -> None:
    print(f"\n## One worker, {n_jets} jets per class (Pythia initialisation included)\n")
    print("| sample | class | jets/s | jets/CPU-s | events/CPU-s | efficiency | mass median | mass mode "
          "| <n constituents> |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sample in samples:
        card = get_card(sample)
        for name in card.class_names:
            r = generate_shard(sample, name, n_jets, class_seeds(card, seed, name, 1)[0])
            mass = r.batch.jet_mass
            print(f"| {sample} | {name} | {n_jets / r.seconds:.1f} | {n_jets / r.cpu_seconds:.1f} "
                  f"| {r.events / r.cpu_seconds:.0f} | {n_jets / r.events:.3f} | {np.median(mass):.1f} "
                  f"| {half_sample_mode(mass):.1f} | {r.batch.n_constituents.mean():.1f} |", flush=True)


def all_workers_table(samples, n_jets: int, workers: int, seed: int) -> None:
    print(f"\n## generate_sample with {workers} workers, {n_jets} jets per class (files written)\n")
    print("| sample | jets | wall s | jets/s | CPU s of the shards |")
    print("|---|---|---|---|---|")
    for sample in samples:
        card = get_card(sample)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            generate_sample(sample, n_jets, out, seed=seed, workers=workers,
                            shard_jets=max(1, n_jets // workers), progress=False)
            wall = time.perf_counter() - start
            info = read_json(os.path.join(out, "generation.json"))
        cpu = sum(c["cpu_seconds"] for c in info["classes"].values())
        total = n_jets * len(card.classes)
        print(f"| {sample} | {total} | {wall:.1f} | {total / wall:.1f} | {cpu:.1f} |", flush=True)


def pthat_scan(n_jets: int, seed: int, margin: float) -> None:
    print(f"\n## pTHat of the selected jets, generated with pTHatMin lowered by {margin:.0f} GeV, {n_jets} per class\n")
    edges = (300, 350, 400, 450, 500)
    print("| sample | class | card pTHatMin | scan pTHatMin | " + " | ".join(f"pTHat < {e}" for e in edges)
          + " | max pTHat |")
    print("|---" * (len(edges) + 5) + "|")
    for sample in ("top_tagging", "quark_gluon"):
        card = get_card(sample)
        setting = next(s for s in card.settings if s.startswith("PhaseSpace:pTHatMin"))
        cut = float(re.split(r"=\s*", setting)[1])
        for name in card.class_names:
            r = generate_shard(sample, name, n_jets, seed, extra_settings=[f"PhaseSpace:pTHatMin = {cut - margin}"])
            fractions = " | ".join(f"{100 * np.mean(r.pthat < e):.2f}%" for e in edges)
            print(f"| {sample} | {name} | {cut:.0f} | {cut - margin:.0f} | {fractions} | {r.pthat.max():.0f} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jets", type=int, default=150, help="jets per class for the one-worker table")
    parser.add_argument("--samples", nargs="+", default=["jetnet", "top_tagging", "quark_gluon"])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pthat-scan", action="store_true", help="also measure the pTHatMin cut-away fraction")
    parser.add_argument("--scan-jets", type=int, default=800, help="jets per class for the pTHat scan")
    parser.add_argument("--scan-margin", type=float, default=50.0, help="scan pTHatMin = card's - this, GeV")
    args = parser.parse_args()
    print(f"# jettf.generate benchmark ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start)")
    per_class_table(args.samples, args.n_jets, args.seed)
    all_workers_table(args.samples, max(4, args.n_jets // 3), args.workers, args.seed)
    if args.pthat_scan:
        pthat_scan(args.scan_jets, args.seed, args.scan_margin)


if __name__ == "__main__":
    main()
