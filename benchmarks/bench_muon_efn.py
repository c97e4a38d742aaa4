"""What the EFN of 004 Table 4.1 misses on our muons: the study's EFN beside the same EFN given more.

    python benchmarks/bench_muon_efn.py [--data-dir DIR] [--n 46000] [--per-class 12000] [--rows efn,...]
        [--cell-positions centre|smeared] [--smear-seed 0]

On the ``bench_calo.py`` muon sample (generated once, then reused) the EFN sits 0.018 below the CNN and the PFN,
which keeps 004's orderings EFN ~ CNN and PFN ~ EFN from holding. Every row here is trained with the study's
split, network seed and ``fit_predict`` settings (:mod:`jettf.calo.study`) on ``--per-class`` muons per class
drawn (seeded) from the sample; the EFN rows differ only in what F reads beside the energy-weighted latent sum
and the cells' sum E_T:

* ``efn``: nothing more (the study's EFN: Phi(delta eta, delta phi), z_a = E_T,a / sum E_T);
* ``efn_pairs``: + sum_ab z_a z_b theta_ab^beta at beta 1/2, 1, 2 (the two-node EFPs, moments of the
  energy-energy correlator; IRC safe);
* ``efn_efp3``: + every EFP of at most 3 nodes and 3 edges at beta 1/2, 1, 2 (adds the chain and the
  triangle that 004's search picks; IRC safe);
* ``efn_hardest``: + the hardest cell's E_T and p_T^D = sum z_a^2 (both change when a cell's energy is split
  among neighbours: collinear unsafe);
* ``efn_learned_pairs``: an EFN with a learned two-point term: F also reads sum_ab z_a z_b Phi2(theta_ab), Phi2
  an MLP of the cells' distance (16 outputs), over the 128 hardest cells (all of them for most muons; IRC safe
  but for that cut). Built here (:func:`build_efn_learned_pairs`), not in the zoo: it is not 004's EFN;
* ``cnn``, ``pfn``: the study's CNN on the image and PFN on the cells, for reference;
* ``cone_1``, ``cones_greedy``: the study's dense networks on the best single isolation cone and on the greedy
  best set (:func:`jettf.calo.study.greedy_cones` on this draw).

``--cell-positions smeared`` asks whether Delphes' tower placement explains why 004's networks gain more over the
cones than ours: Delphes' ``Calorimeter`` module (``SmearTowerCenter``, on by default) puts a tower's whole energy
at one point drawn uniformly inside the tower, where the sample keeps each cell at its centre and the image shares
a cell's E_T among the pixels it overlaps. :func:`smear_cell_positions` moves every stored cell (seeded) to such a
point, drops the cells it moves out of the cone, and rebuilds the image (each cell's E_T in the one pixel its point
falls in), the cones and sum E_T from them; every row then reads these inputs.

The EFPs are :func:`jettf.explain.efp_observables` of all the cells the EFN reads (theta = delta R between
cells), as logs. Prints a table of AUCs (weighted, 95% bootstrap intervals) with paired differences to the CNN
and the EFN. With ``--per-class`` equal to ``--n`` the split, the networks and their AUCs are the benchmark's
(``bench_calo.py --study muons``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

ROWS = ("efn", "efn_pairs", "efn_efp3", "efn_hardest", "efn_learned_pairs", "cnn", "pfn", "cone_1", "cones_greedy")
PAIR_CELLS = 128  # the learned two-point term reads the hardest cells (cells are stored hardest first)


def log_efps(cells: np.ndarray, grid, n_jobs: int) -> np.ndarray:
    """``[N, K]`` log of the IRC-safe EFPs of ``grid`` (kappa 1, normalized) of each muon's cells; a muon with a
    single cell has every EFP 0, floored at 1e-8."""
    from jettf.calo.study import cells_jet_batch
    from jettf.explain import efp_observables

    return np.log(np.maximum(efp_observables(cells_jet_batch(cells), grid, n_jobs=n_jobs).values, 0.0) + 1e-8)


def hardest_cell(cells: np.ndarray) -> np.ndarray:
    """``[N, 2]`` log of the hardest cell's E_T (GeV) and log p_T^D = log sum_a z_a^2 (collinear unsafe)."""
    et = cells[..., 0].astype(np.float64)
    z = et / np.maximum(et.sum(axis=1, keepdims=True), 1e-12)
    return np.stack([np.log(et.max(axis=1) + 1e-3), np.log((z ** 2).sum(axis=1) + 1e-12)], axis=1)


def smear_cell_positions(cells: np.ndarray, muon_pt: np.ndarray, seed: int) -> dict:
    """The muons' inputs with each cell at a uniform random point inside its own area (Delphes' SmearTowerCenter).

    ``cells``: the sample's ``[N, M, 5]`` (E_T, delta eta, delta phi, E, hcal) at the cell centres. Returns the
    study's muon inputs (``image`` ``[N, P, P, 1]``, ``cones``, ``cells`` ``[N, M, 4]`` hardest first, ``sum_pt``)
    rebuilt from the moved cells: a cell now at delta-R >= the cone is dropped, the rest put their whole E_T in
    the pixel their point falls in."""
    from jettf.calo.cards import MUONS
    from jettf.calo.images import pixel_delta_r
    from jettf.detector import get_card
    from jettf.features.calorimeter import isolation_cones

    detector = get_card(MUONS.detector)
    moved = np.array(cells, dtype=np.float64)
    hcal = moved[..., 4] > 0.5
    rng = np.random.default_rng(seed)
    for column, ecal_size, hcal_size in ((1, detector.ecal.deta, detector.hcal.deta),
                                         (2, detector.ecal.dphi, detector.hcal.dphi)):
        moved[..., column] += (rng.random(hcal.shape) - 0.5) * np.where(hcal, hcal_size, ecal_size)
    inside = (moved[..., 0] > 0) & (np.hypot(moved[..., 1], moved[..., 2]) < MUONS.cone)
    moved[~inside] = 0.0
    n, m, _ = moved.shape
    pixel = [np.floor((moved[..., c] + MUONS.cone) / MUONS.pixel_size).astype(np.int64) for c in (1, 2)]
    ok = inside & (pixel[0] >= 0) & (pixel[0] < MUONS.pixels) & (pixel[1] >= 0) & (pixel[1] < MUONS.pixels)
    muon = np.broadcast_to(np.arange(n)[:, None], (n, m))
    flat = (muon[ok] * MUONS.pixels + pixel[0][ok]) * MUONS.pixels + pixel[1][ok]
    image = np.bincount(flat, weights=moved[..., 0][ok], minlength=n * MUONS.pixels ** 2)
    image = image.reshape(n, MUONS.pixels, MUONS.pixels) * (pixel_delta_r(MUONS.pixels, MUONS.cone) < MUONS.cone)
    moved = np.take_along_axis(moved, np.argsort(-moved[..., 0], axis=1, kind="stable")[..., None], axis=1)
    return {"image": image[..., None].astype(np.float32),
            "cones": isolation_cones(image, muon_pt, cone=MUONS.cone).astype(np.float32),
            "cells": moved[..., :4].astype(np.float32), "sum_pt": image.sum(axis=(1, 2))[:, None].astype(np.float32)}


def build_efn_learned_pairs(n_classes, input_shape=None, n_global_features=0, *, phi_sizes, f_sizes,
                            pair_sizes=(16, 16), center="origin", class_names=None, metadata=None):
    """The study's EFN with F also reading sum_ab z_a z_b Phi2(theta_ab) over the ``PAIR_CELLS`` hardest cells
    (theta = delta R between cells, Phi2 a ReLU MLP of ``pair_sizes``, linear last layer)."""
    import keras
    from keras import ops

    from jettf.models.heads import assemble, classifier_head, make_inputs
    from jettf.models.layers import ConstituentFeatures, WeightedSum

    inputs = make_inputs(input_shape or (None, 4), n_global_features, kind="constituents")
    z, angles = ConstituentFeatures("efn", center=center, name="efn_inputs")(inputs["constituents"])
    x = angles
    for i, units in enumerate(phi_sizes, start=1):
        x = keras.layers.Dense(int(units), activation="relu", kernel_initializer="glorot_normal", name=f"phi_{i}")(x)
    latent = WeightedSum(name="energy_weighted_sum")([x, z])
    zp, ap = z[:, :PAIR_CELLS], angles[:, :PAIR_CELLS]
    delta = ops.expand_dims(ap, 2) - ops.expand_dims(ap, 1)
    h = ops.sqrt(ops.sum(delta * delta, axis=-1, keepdims=True) + 1e-12)  # [N, P, P, 1] theta_ab
    for i, units in enumerate(pair_sizes, start=1):
        last = i == len(pair_sizes)
        h = keras.layers.Dense(int(units), activation=None if last else "relu", kernel_initializer="glorot_normal",
                               name=f"phi2_{i}")(h)
    pairs = ops.sum(h * ops.expand_dims(ops.expand_dims(zp, 2) * ops.expand_dims(zp, 1), -1), axis=(1, 2))
    probs = classifier_head([latent, pairs], inputs, n_classes, mlp_units=f_sizes, mlp_prefix="f",
                            class_names=class_names, metadata=metadata, kernel_initializer="glorot_normal")
    return assemble(inputs, probs, "efn_learned_pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="where the generated samples are kept (DATA_DIR/004/...)")
    parser.add_argument("--n", type=int, default=46000, help="muons per class of the sample (bench_calo's)")
    parser.add_argument("--per-class", type=int, default=12000, help="muons per class drawn for these runs")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, some of {','.join(ROWS)}")
    parser.add_argument("--workers", type=int, default=2, help="processes generating the sample and the EFPs")
    parser.add_argument("--cell-positions", choices=("centre", "smeared"), default="centre",
                        help="the sample's cells at their centres, or each moved to a random point inside itself "
                             "(Delphes' SmearTowerCenter; module docstring)")
    parser.add_argument("--smear-seed", type=int, default=0, help="seed of the smeared cell positions")
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"--rows: unknown {unknown}; expected some of {list(ROWS)}")
    if not 10 <= args.per_class <= args.n:
        parser.error(f"--per-class {args.per_class}: expected 10..{args.n} (--n)")
    import jettf.models as zoo
    from jettf.calo.study import StudyConfig, _inputs, _split, fit_predict, greedy_cones, load_sample, muon_networks
    from jettf.explain import EFPGrid
    from jettf.metrics import auc_difference, paired_auc_bootstrap
    from jettf.training.trainer import quiet_retracing

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average at start {os.getloadavg()}")
    config = StudyConfig(study="muons", n=args.n, data_dir=args.data_dir, workers=args.workers, verbose=False)
    sample, _ = load_sample(config)
    labels = sample.labels
    if args.per_class == args.n:
        keep = np.arange(len(labels))
    else:
        rng = np.random.default_rng(config.seed)
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), args.per_class, replace=False)
                                       for c in (0, 1)]))
    if args.cell_positions == "smeared":
        data = smear_cell_positions(sample["cells"][keep], sample["pt"][keep], seed=args.smear_seed)
        data["cells"] = data["cells"][:, :config.max_cells]
    else:
        data = {k: v[keep] for k, v in _inputs(config, sample).items()}
    y, weight = labels[keep], sample["weight"][keep].astype(np.float64)
    train, val, test = _split(y, config.seed)
    if {"cone_1", "cones_greedy"} & set(rows):
        steps = greedy_cones(data["cones"], y, train, val, weight, seed=config.seed)
        data["cones_1"], data["cones_greedy"] = (data["cones"][:, steps[k]["cones"]] for k in (0, -1))

    start = time.perf_counter()
    cells = data["cells"]
    if "efn_pairs" in rows:
        data["pairs"] = log_efps(cells, EFPGrid(dmax=1, betas=(0.5, 1.0, 2.0), include_d0=False), args.workers)
    if "efn_efp3" in rows:
        data["efp3"] = log_efps(cells, EFPGrid(dmax=3, nmax=3, betas=(0.5, 1.0, 2.0), include_d0=False),
                                args.workers)
    if "efn_hardest" in rows:
        data["hardest"] = hardest_cell(cells)
    observables_seconds = time.perf_counter() - start

    # The study's specs and seeds (seed + 101 x position in muon_networks), so that rows match bench_calo's.
    study = {spec["key"]: (spec, config.seed + 101 * i) for i, spec in enumerate(muon_networks(config))}
    efn, efn_seed = study["efn"]
    extras = {"efn_pairs": ("pairs", "+ sum z_a z_b theta_ab^beta, beta 1/2, 1, 2 (IRC safe)"),
              "efn_efp3": ("efp3", f"+ {data['efp3'].shape[1] if 'efp3' in data else 0} EFPs of <= 3 nodes and "
                                   "<= 3 edges (IRC safe)"),
              "efn_hardest": ("hardest", "+ hardest cell E_T and p_T^D (collinear unsafe)")}
    specs = {}
    for row in rows:
        if row == "efn_learned_pairs":
            if "efn_learned_pairs" not in zoo.available():
                zoo.register("efn_learned_pairs", build_efn_learned_pairs, input_kind="constituents")
            spec = dict(efn, key=row, model=row, label=f"EFN + learned sum z_a z_b Phi2(theta_ab) of the "
                                                        f"{PAIR_CELLS} hardest cells")
            specs[row] = (spec, efn_seed)
        elif row in extras:
            key, label = extras[row]
            specs[row] = (dict(efn, key=row, label=f"EFN {label}", inputs=efn["inputs"] + (key,)), efn_seed)
        else:
            specs[row] = study[row]
    scores, records = {}, {}
    for row, (spec, seed) in specs.items():
        with quiet_retracing():
            scores[row], records[row] = fit_predict(spec, data, y, weight, train, val, test, config, seed=seed)
        print(f"  {spec['label']}: {records[row]['epochs']} epochs, {records[row]['seconds']} s", flush=True)
    boot = paired_auc_bootstrap(y[test], scores, weight[test], n_boot=config.n_boot, seed=config.seed)
    counts = (cells[..., 0] > 0).sum(axis=1)

    print(f"\n{len(y)} muons ({args.per_class} per class of the {args.n}-per-class sample), cells at their "
          f"{args.cell_positions} positions, {len(test)} test; "
          f"cells per muon: median {int(np.median(counts))}, more than {PAIR_CELLS} for "
          f"{np.mean(counts > PAIR_CELLS):.1%}; observables "
          f"{observables_seconds:.0f} s\n")
    refs = [r for r in ("cnn", "efn") if r in scores]
    print("| " + " | ".join(["network", "AUC (weighted, 95% CI)", *(f"- {r.upper()} (paired)" for r in refs),
                            "epochs", "best val loss", "s"]) + " |")
    print("|---|---|" + "---|" * len(refs) + "---:|---:|---:|")
    for row, (spec, _) in specs.items():
        b = boot[row]
        diffs = []
        for ref in refs:
            d = auc_difference(b, boot[ref]) if ref != row else None
            diffs.append("" if d is None else f"{d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
        r = records[row]
        print("| " + " | ".join([spec["label"], f"{b['auc']:.4f} [{b['low']:.4f}, {b['high']:.4f}]", *diffs,
                                str(r["epochs"]), f"{r['best_val_loss']:.4f}", f"{r['seconds']:.0f}"]) + " |")
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
