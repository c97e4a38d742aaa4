"""What the EFN of 004 Table 4.1 misses on our muons: the study's EFN beside the same EFN given more.

    python benchmarks/bench_muon_efn.py [--data-dir DIR] [--n 46000] [--per-class 12000] [--rows efn,...]

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
* ``cnn``, ``pfn``: the study's CNN on the image and PFN on the cells, for reference.

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

ROWS = ("efn", "efn_pairs", "efn_efp3", "efn_hardest", "efn_learned_pairs", "cnn", "pfn")
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
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"--rows: unknown {unknown}; expected some of {list(ROWS)}")
    if not 10 <= args.per_class <= args.n:
        parser.error(f"--per-class {args.per_class}: expected 10..{args.n} (--n)")
    import jettf.models as zoo
    from jettf.calo.study import StudyConfig, _inputs, _split, fit_predict, load_sample, muon_networks
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
    data = {k: v[keep] for k, v in _inputs(config, sample).items()}
    y, weight = labels[keep], sample["weight"][keep].astype(np.float64)
    train, val, test = _split(y, config.seed)

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

    print(f"\n{len(y)} muons ({args.per_class} per class of the {args.n}-per-class sample), {len(test)} test; "
          f"cells per muon: median {int(np.median(counts))}, more than {PAIR_CELLS} for "
          f"{np.mean(counts > PAIR_CELLS):.1%}; observables "
          f"{observables_seconds:.0f} s\n")
    refs = [r for r in ("cnn", "efn") if r in scores]
    print("| network | AUC (weighted, 95% CI) | " + " | ".join(f"- {r.upper()} (paired)" for r in refs)
          + " | epochs | best val loss | s |")
    print("|---|---|" + "---|" * len(refs) + "---:|---:|---:|")
    for row, (spec, _) in specs.items():
        b = boot[row]
        diffs = []
        for ref in refs:
            d = auc_difference(b, boot[ref]) if ref != row else None
            diffs.append("" if d is None else f"{d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
        r = records[row]
        print(f"| {spec['label']} | {b['auc']:.4f} [{b['low']:.4f}, {b['high']:.4f}] | " + " | ".join(diffs)
              + f" | {r['epochs']} | {r['best_val_loss']:.4f} | {r['seconds']:.0f} |")
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
