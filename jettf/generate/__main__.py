"""Command line: ``python -m jettf.generate SAMPLE --n-jets N --out DIR [--workers K] [--seed S] [--detector CARD]``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from jettf.calo.cards import LEPTON_CARDS
from jettf.detector.cards import CARDS as DETECTOR_CARDS
from jettf.generate.production import generate_sample
from jettf.generate.pythia import SHARD_JETS
from jettf.generate.samples import SAMPLES

PROG = "python -m jettf.generate"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate a sample (SIGTERM as Ctrl-C: finished shards kept, workers stopped; one-line errors: jettf.cli)."""
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


def _main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, epilog="--debug: show tracebacks",
        description="Generate a jet sample with Pythia 8 + FastJet in the public file layout "
        "(interrupt and rerun to resume).",
    )
    parser.add_argument("sample", choices=sorted(SAMPLES) + sorted(LEPTON_CARDS),
                        help="which public dataset to reproduce, or 004's electrons / muons candidates")
    parser.add_argument("--n-jets", type=int, required=True, help="jets (lepton candidates) per class")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--workers", type=int, default=1,
                        help=f"parallel processes (this machine has {os.cpu_count()} cores)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--classes", nargs="+", help="subset of classes (default all)")
    parser.add_argument("--n-particles", type=int, default=30, choices=(30, 150),
                        help="jetnet only: particles per jet in the files")
    parser.add_argument("--shard-jets", type=int, default=SHARD_JETS, help="jets per shard (part of the seeding)")
    parser.add_argument("--detector", choices=sorted(DETECTOR_CARDS),
                        help="detector-level jets: run this jettf.detector card on each event and cluster "
                        "particle-flow candidates (default: generator-level particles; cms_quark_gluon: always cms)")
    parser.add_argument("--pileup", type=float, metavar="MU",
                        help="cms_quark_gluon only: overlay Poisson(MU) minimum-bias events from the detector's "
                        "pile-up library on every event (003: <PU> 18-21; default none)")
    args = parser.parse_args(argv)
    if args.n_jets < 1 or args.workers < 1:
        parser.error("--n-jets and --workers must be >= 1")
    if args.sample in LEPTON_CARDS and (args.classes or args.detector):
        parser.error(f"{args.sample}: --classes and --detector are for jet samples (both classes are made, always "
                     "through the atlas card)")
    try:
        if args.sample in LEPTON_CARDS:  # 004's lepton candidates: jettf.generate.leptons
            from jettf.generate.leptons import LEPTON_SHARD, generate_lepton_sample

            shard = args.shard_jets if args.shard_jets != SHARD_JETS else LEPTON_SHARD
            files = generate_lepton_sample(args.sample, args.n_jets, args.out, seed=args.seed,
                                           workers=args.workers, shard=shard)
        else:
            files = generate_sample(
                args.sample, args.n_jets, args.out, seed=args.seed, workers=args.workers,
                classes=args.classes, n_particles=args.n_particles, shard_jets=args.shard_jets,
                detector=args.detector,
                pileup=args.pileup,
            )
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the finished shards are kept in {os.path.join(args.out, '.shards')}; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    for path in files:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
