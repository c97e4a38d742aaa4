"""How far observables get without a network on 004's muons: the target for the cell networks of Table 4.1.

    python benchmarks/bench_muon_observables.py [--data-dir DIR] [--n 46000] [--run runs/004-muons-n46000]

Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, weighted, early stopping on a tenth of
the training candidates) on nested sets of observables of the muon image, with the study's split
(:mod:`jettf.calo.study`: 60/20/20, test figures weighted):

1. the 18 isolation cones I_mu(R0) (log);
2. + the image's total E_T (log);
3. + IRC-safe EFPs of the 128 hardest pixels: every graph with at most 3 edges at kappa 1, beta 1/2, 1, 2
   (the pair correlator, the triangle 004's search picks, the 3-chain; :func:`jettf.explain.efp_observables`);
4. + IRC-unsafe counts: pixels above 0.5, 1, 2, 4 GeV and non-zero pixels in 5 annuli around the muon.

Set 3 is what an EFN can represent (IRC-safe, energy-weighted); set 4 adds what only the PFN and the CNN can
see. Prints the table beside the networks of the run's ``metrics.json`` (``--run``, from
``python -m jettf.calo muons``), when given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ANNULI = ((0.0, 0.05), (0.05, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.45))
THRESHOLDS_GEV = (0.5, 1.0, 2.0, 4.0)


def hard_pixel_counts(image_et: np.ndarray, cone: float) -> np.ndarray:
    """``[N, len(ANNULI) * (len(THRESHOLDS_GEV) + 1)]``: per annulus (delta-R from the image centre), the number
    of pixels above each threshold and of non-zero pixels (IRC-unsafe: a split deposit counts twice)."""
    from jettf.calo.images import pixel_delta_r

    radius = pixel_delta_r(image_et.shape[1], cone)
    columns = []
    for low, high in ANNULI:
        pixels = image_et[:, (radius >= low) & (radius < high)]
        columns += [(pixels > t).sum(axis=1) for t in THRESHOLDS_GEV] + [(pixels > 0).sum(axis=1)]
    return np.stack(columns, axis=1).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="where the generated samples are kept (DATA_DIR/004/...)")
    parser.add_argument("--n", type=int, default=46000, help="muons per class (the bench_calo sample)")
    parser.add_argument("--run", default=None, help="a jettf.calo muon run directory, for the networks' AUCs")
    parser.add_argument("--workers", type=int, default=2, help="processes for the EFPs")
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier

    from jettf.calo.cards import MUONS
    from jettf.calo.study import StudyConfig, _cells_batch, _inputs, _split, load_sample
    from jettf.explain import EFPGrid, efp_observables
    from jettf.metrics import paired_auc_bootstrap

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average at start {os.getloadavg()}")
    config = StudyConfig(study="muons", n=args.n, data_dir=args.data_dir, workers=args.workers, verbose=False)
    sample, _ = load_sample(config)
    y, weight = sample.labels, sample["weight"].astype(np.float64)
    train, _, test = _split(y, config.seed)
    image = sample["image_et"].astype(np.float64)
    start = time.perf_counter()
    data = _inputs(config, sample)
    width = 2 * MUONS.cone / MUONS.pixels
    efps = efp_observables(_cells_batch(image, width, width, max_cells=128),
                           EFPGrid(dmax=3, kappas=(1.0,), betas=(0.5, 1.0, 2.0), include_d0=False),
                           n_jobs=args.workers)
    blocks = {"18 isolation cones": np.log(data["cones"].astype(np.float64) + 0.01),
              "+ sum E_T": np.log(data["sum_pt"].astype(np.float64) + 1.0),
              f"+ {len(efps.names)} IRC-safe EFPs (d <= 3)": np.log(np.maximum(efps.values, 0.0) + 1e-8),
              "+ hard-pixel counts (IRC-unsafe)": hard_pixel_counts(image, MUONS.cone)}
    observables_seconds = time.perf_counter() - start
    scores, seconds, columns = {}, {}, []
    for name, block in blocks.items():
        columns.append(block)
        x = np.concatenate(columns, axis=1)
        t0 = time.perf_counter()
        trees = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, early_stopping=True,
                                               random_state=config.seed)
        trees.fit(x[train], y[train], sample_weight=weight[train])
        scores[name] = trees.predict_proba(x[test])[:, 1]
        seconds[name] = time.perf_counter() - t0
    boot = paired_auc_bootstrap(y[test], scores, weight[test], n_boot=config.n_boot, seed=config.seed)
    print(f"\n{len(y)} muons ({args.n} per class), {len(test)} test; observables {observables_seconds:.0f} s "
          f"(EFPs at beta 1/2, 1, 2, connected and not)\n")
    print("| boosted trees on | AUC (weighted, 95% CI) | gain over the row above | fit s |")
    print("|---|---|---|---:|")
    previous = None
    for name in scores:
        b = boot[name]
        gain = "" if previous is None else f"{b['auc'] - boot[previous]['auc']:+.4f}"
        print(f"| {name} | {b['auc']:.4f} [{b['low']:.4f}, {b['high']:.4f}] | {gain} | {seconds[name]:.0f} |")
        previous = name
    if args.run:
        metrics = json.loads((Path(args.run) / "metrics.json").read_text())
        print("\n| network (the run's metrics.json) | AUC (weighted, 95% CI) |")
        print("|---|---|")
        for record in metrics["networks"].values():
            print(f"| {record['label']} | {record['auc']:.4f} [{record['ci'][0]:.4f}, {record['ci'][1]:.4f}] |")
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
