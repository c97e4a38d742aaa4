"""``python -m jettf.calo electrons|muons [--n N] [--workers K] [--manual-dir DIR] [--out RUN_DIR] ...``

Runs one of 004's calorimeter studies end to end (:mod:`jettf.calo.study`): the sample (generated once with
``jettf.generate``, or ``--manual-dir``'s ``electrons.h5`` / ``muons.h5``), the expert features, every network
of 004 Table 3.1 / 4.1, bootstrap intervals, the acceptance orderings and the guided EFP search; prints the
tables and writes ``RUN_DIR/report.md``, ``metrics.json`` and the figures.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

PROG = "python -m jettf.calo"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


def _main(argv) -> int:
    from jettf.calo.study import StudyConfig

    defaults = StudyConfig()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0], epilog="--debug: show tracebacks")
    p.add_argument("study", choices=("electrons", "muons"), help="004 chapter 3 (electrons) or 4 (muons)")
    p.add_argument("--n", type=int, default=defaults.n, help=f"candidates per class (default {defaults.n})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="where generated samples are kept (default $JETTF_DATA_DIR or "
                                                    "./data; the sample goes to DATA_DIR/004/)")
    p.add_argument("--manual-dir", default=None, help="a directory holding electrons.h5 / muons.h5 to use instead")
    p.add_argument("--out", default=None, help="run directory (default runs/004-STUDY-nN-sSEED)")
    p.add_argument("--workers", type=int, default=1, help="processes for generating the sample")
    p.add_argument("--profile", choices=("cpu", "paper"), default="cpu",
                   help="network sizes: 004's (paper) or scaled for CPUs (cpu, default; see jettf.calo.study)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="most epochs (early stopping on validation)")
    p.add_argument("--patience", type=int, default=defaults.patience)
    p.add_argument("--n-boot", type=int, default=defaults.n_boot, help="bootstrap resamples of the test set")
    p.add_argument("--networks", nargs="+", default=None, help="subset of the networks (keys as in metrics.json)")
    p.add_argument("--no-search", action="store_true", help="skip the guided EFP search")
    grid = "default: the --profile's grid for the study (cpu: what 2 cores search in minutes; paper: 004's)"
    p.add_argument("--efp-dmax", type=int, default=None, help=f"EFP degree (004: 7; {grid})")
    p.add_argument("--efp-nmax", type=int, default=None, help=f"most EFP nodes ({grid})")
    p.add_argument("--efp-kappas", type=float, nargs="+", default=None, help=f"energy exponents ({grid})")
    p.add_argument("--efp-betas", type=float, nargs="+", default=None, help=f"angular exponents ({grid})")
    p.add_argument("--efp-prime-only", action="store_true", help="connected EFP graphs only")
    p.add_argument("--efp-max-cells", type=int, default=None, help=f"EFPs of the hardest N pixels only ({grid})")
    p.add_argument("--max-cells", type=int, default=defaults.max_cells,
                   help=f"PFN/EFN inputs: the hardest N cells (default {defaults.max_cells}; 0: all the file stores)")
    p.add_argument("--search-steps", type=int, default=defaults.search_steps)
    p.add_argument("--tune", type=int, default=0,
                   help="keras-tuner Bayesian trials of the dense network over 004 Table 3.4 (0: none)")
    args = p.parse_args(argv)
    from jettf.calo.study import run_study

    config = StudyConfig(
        study=args.study, n=args.n, seed=args.seed, data_dir=args.data_dir, manual_dir=args.manual_dir, out=args.out,
        workers=args.workers, profile=args.profile, epochs=args.epochs, patience=args.patience, n_boot=args.n_boot,
        networks=args.networks, search=not args.no_search, efp_dmax=args.efp_dmax, efp_nmax=args.efp_nmax,
        efp_kappas=args.efp_kappas and tuple(args.efp_kappas), efp_betas=args.efp_betas and tuple(args.efp_betas),
        efp_prime_only=args.efp_prime_only, efp_max_cells=args.efp_max_cells, max_cells=args.max_cells or None,
        search_steps=args.search_steps, tune=args.tune,
    )
    summary = run_study(config)
    print(summary["text"])
    print(f"\nreport: {summary['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
