"""004's two calorimeter studies end to end at the sizes written down in benchmarks/README.md (section "004").

    python benchmarks/bench_calo.py [--study electrons|muons|both] [--data-dir DIR] [--workers 2] [--out runs]

Each study: the generated sample (made once, then reused; its generation time is in DIR/004/*/generation_*.json),
the expert features, every network of 004 Table 3.1 / 4.1 with bootstrap intervals, the acceptance orderings and
the guided EFP search (:mod:`jettf.calo.study`). Prints the machine, the load average at start and end, the
sizes and the tables (markdown); the run directories hold report.md and metrics.json.

Sizes (chosen to run on 2 CPU cores within an hour per study, generation included):
electrons 3000 candidates per class, EFPs of degree <= 5 at 004's kappas and betas on the ECAL and HCAL pixels;
muons 46000 per class, 004's own sample size (91,592 muons), because the networks' edge over the isolation cones
needs it: at 12000 per class the PFN and EFN were not above the cones. PFN / EFN read the 384 hardest pixels;
EFPs near 004 section 4.5.2 (kappa 1, beta 1 and 2, at most 3 nodes, degree <= 5: the triangle and
theta_ab^2 theta_bc^3 004 picks are in the set) on the 128 hardest pixels. The muons take about an hour
(12 minutes of generation with 2 workers).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

SETTINGS = {"electrons": dict(n=3000), "muons": dict(n=46000)}  # EFP grids: jettf.calo.study.CPU_EFP_GRIDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=("electrons", "muons", "both"), default="both")
    parser.add_argument("--data-dir", default=None, help="where the generated samples are kept (DATA_DIR/004/...)")
    parser.add_argument("--workers", type=int, default=2, help="processes generating a sample")
    parser.add_argument("--out", default="runs", help="parent of the run directories")
    parser.add_argument("--n", type=int, default=None, help="override the candidates per class")
    args = parser.parse_args()
    from jettf.calo.study import StudyConfig, run_study

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average at start {os.getloadavg()}")
    for study in (("electrons", "muons") if args.study == "both" else (args.study,)):
        settings = dict(SETTINGS[study])
        if args.n is not None:
            settings["n"] = args.n
        start = time.perf_counter()
        summary = run_study(StudyConfig(study=study, data_dir=args.data_dir, workers=args.workers,
                                        out=os.path.join(args.out, f"004-{study}-n{settings['n']}"), **settings))
        print(f"\n## {study}: {summary['sizes']} in {time.perf_counter() - start:.0f} s "
              f"(stages {summary['seconds']}; load {summary['load_average']})\n")
        print(summary["text"])
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
