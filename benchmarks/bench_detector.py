"""The parametric detector (jettf.detector) beside Pythia event generation, on one core.

    python benchmarks/bench_detector.py [--quick] [--n-jets 100]

The process pins itself to one CPU (as ``taskset -c``); rates are events (jets) per CPU
second of the process, best of three repeats (the machine may be shared). Prints markdown:

1. events/s of Pythia 8 generation (top-tagging card: 14 TeV, MPI off; and minimum-bias
   SoftQCD events, what pile-up would cost if generated per event) and of the detector:
   jets-only (the constituents of top-tagging jets: each jet an event) for both cards and
   both views, without pile-up and with <mu> = 20 and 50 from the cached minimum-bias
   library (overlaid in the 2.2 x 2.2 window around the jet); whole events (every visible
   final-state particle of a Pythia event, the ``--detector`` sample path).
2. Multiplicity and response: ``generate_jets(..., detector="atlas")`` beside the
   generator-level jets of the same card (mean constituents per jet; the public Delphes-level
   top-tagging data has ~50), and the detector-level jet pT and mass medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from jettf.detector import MinBiasLibrary, Particles, PileUp, simulate, simulate_jets  # noqa: E402
from jettf.detector.particles import pythia_final_state  # noqa: E402
from jettf.generate.pythia import _init_pythia, generate_jets, generate_shard  # noqa: E402
from jettf.generate.samples import get_card  # noqa: E402
from jettf.jets import JetBatch  # noqa: E402


def best_rate(fn, n: int, repeats: int = 3) -> float:
    """Events per CPU second: the best of ``repeats`` calls of ``fn()`` on ``n`` events."""
    best = 0.0
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = max(best, n / max(time.process_time() - start, 1e-9))
    return best


def pythia_rate(settings, n_events: int, seed: int = 1) -> float:
    """Events per CPU second of Pythia (``nextBatch``, initialisation excluded)."""
    pythia = _init_pythia(tuple(settings), seed)
    pythia.nextBatch(5)
    start = time.process_time()
    done = 0
    while done < n_events:
        done += len(pythia.nextBatch(min(200, n_events - done)))
    return n_events / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer jets and events (a minute)")
    parser.add_argument("--n-jets", type=int, default=None, help="generated jets per class (default 100, quick 20)")
    args = parser.parse_args()
    n_jets = args.n_jets or (20 if args.quick else 100)
    n_events = 300 if args.quick else 1000
    print(f"machine: {platform.processor() or platform.machine()}, 1 pinned core; load {os.getloadavg()}")

    card = get_card("top_tagging")
    t0 = time.process_time()
    shards = [generate_shard("top_tagging", name, n_jets, seed) for name, seed in (("qcd", 11), ("top", 12))]
    gen = JetBatch.concatenate([s.batch for s in shards])
    gen_events = sum(s.events for s in shards)
    gen_cpu = sum(s.cpu_seconds for s in shards)
    print(f"generated {len(gen)} top-tagging jets from {gen_events} events in {time.process_time() - t0:.1f} CPU-s")
    jets = JetBatch.concatenate([gen] * max(1, 2000 // len(gen)))  # timing sample: ~2000 jets

    t0 = time.perf_counter()
    library = MinBiasLibrary.cached(n_events=2000, ecm=14000.0, seed=1)
    print(f"minimum-bias library: {library.n_events} events, {len(library.pt) / library.n_events:.0f} visible "
          f"particles each, ready in {time.perf_counter() - t0:.1f} s (cached after the first run)")

    rows = []
    qcd = card.pythia_settings("qcd")
    rows.append(("Pythia 8: top-tagging QCD events (14 TeV, pTHat > 300, MPI off)", "-", pythia_rate(qcd, n_events)))
    rows.append(("Pythia 8: jets of the top-tagging sample (selection included)", "-", len(gen) / gen_cpu))
    minbias = ("Beams:eCM = 14000", "SoftQCD:inelastic = on", "Tune:pp = 14")
    rows.append(("Pythia 8: minimum-bias events (SoftQCD:inelastic, 14 TeV)", "-", pythia_rate(minbias, n_events // 2)))
    for name in ("atlas", "cms"):
        for view in ("pflow", "objects"):
            rows.append((f"detector, jets only ({view})", name,
                         best_rate(lambda: simulate_jets(jets, name, seed=1, view=view), len(jets))))
        for mu in (20, 50):
            pileup = PileUp(library, mu)
            rows.append((f"detector, jets only (pflow), pile-up <mu> = {mu}", name,
                         best_rate(lambda: simulate_jets(jets, name, seed=1, pileup=pileup), len(jets))))
    # Whole events: every visible final-state particle of Pythia top-tagging QCD events.
    pythia = _init_pythia(qcd, 5)
    events = pythia.nextBatch(n_events)
    px, py, pz, e, pid, event = pythia_final_state(events)
    particles = Particles.from_cartesian(px, py, pz, e, pid, event, len(events))
    per_event = len(particles) / len(events)
    for name in ("atlas", "cms"):
        rows.append((f"detector, whole events ({per_event:.0f} visible particles)", name,
                     best_rate(lambda: simulate(particles, name, seed=1), len(events))))

    print(f"\n{len(jets)} jets of {jets.n_constituents.mean():.0f} constituents on average; events/s per core "
          "(CPU time):\n")
    print("| what | card | events/s per core |")
    print("|---|---|---|")
    for what, name, rate in rows:
        print(f"| {what} | {name} | {rate:,.0f} |")

    print("\nMultiplicity (top-tagging card, same seeds; the public Delphes-level data: ~50 per jet):\n")
    print("| class | generator level | detector level (atlas, PF candidates) | PF jet pT median "
          "| PF jet mass median |")
    print("|---|---|---|---|---|")
    det = generate_jets("top_tagging", n_jets, seed=7, detector="atlas")
    ref = generate_jets("top_tagging", n_jets, seed=7)
    for k, name in enumerate(card.class_names):
        d, g = det.select(det.labels == k), ref.select(ref.labels == k)
        print(f"| {name} | {g.n_constituents.mean():.1f} | {d.n_constituents.mean():.1f} | "
              f"{np.median(d.jet_pt):.0f} | {np.median(d.jet_mass):.0f} "
              f"(generator level {np.median(g.jet_mass):.0f}) |")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
