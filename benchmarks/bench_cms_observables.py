"""How far eight jet-shape observables of each view get without a network: the yardstick for 003's Table 4 rows.

    python benchmarks/bench_cms_observables.py [--work runs/bench_cms_quark_gluon]

Reads the sample of a ``bench_cms_quark_gluon.py`` work directory (``--work``) and, per channel of each 003
Table 4 view, computes eight observables of the jet-view image (pixel delta-R from the view centre, the most
energetic HCAL tower; energies in GeV): the image's sum, the sum within delta-R < 0.4, the energy-weighted
mean delta-R and delta-R^2 within 0.4, the mean delta-R of the whole image, the central HCAL tower's share
(5 x 5 pixels) of the energy within 0.4, p_T^D = sqrt(sum E^2) / sum E and the number of non-zero pixels,
both within 0.4. Gradient-boosted trees (scikit-learn, early stopping on a tenth of the training events) on
each view's observables are trained on the jet study's training and validation events and evaluated on its
test events; where the jet study's predictions are in the work directory, each row also gets the ResNet-15's
AUC on the same jets and the paired difference CNN - trees. A last table gives each observable's AUC alone, per
channel of the detector view: which jet shape carries a view's power.

A network that does not beat trees on its own view's observables has not learnt the view's spatial detail;
the gap between views in the trees column is what the channels carry in their jet shapes alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cms_quark_gluon import TABLE4, builder_split, paired_difference, slug  # noqa: E402

JET_RADIUS = 0.4
OBSERVABLES = ("sum", "sum(dR<0.4)", "width(dR<0.4)", "dR^2(dR<0.4)", "width", "centre tower share", "p_T^D",
               "non-zero pixels(dR<0.4)")


def view_observables(images: np.ndarray, pixel: float) -> np.ndarray:
    """``[N, C * len(OBSERVABLES)]`` for jet views ``[N, P, P, C]`` of ``pixel`` x ``pixel`` (radians) pixels."""
    from jettf.calo.images import pixel_delta_r

    side = images.shape[1]
    radius = pixel_delta_r(side, side * pixel / 2)
    inside = radius < JET_RADIUS
    mid = side // 2
    columns = []
    for c in range(images.shape[-1]):
        image = images[..., c].astype(np.float64)
        total = image.sum(axis=(1, 2))
        near = np.where(inside, image, 0.0)
        e_near = near.sum(axis=(1, 2))
        safe = np.maximum(e_near, 1e-9)
        columns += [
            np.log1p(total), np.log1p(e_near),
            (near * radius).sum(axis=(1, 2)) / safe,
            (near * radius**2).sum(axis=(1, 2)) / safe,
            (image * radius).sum(axis=(1, 2)) / np.maximum(total, 1e-9),
            near[:, mid - 2:mid + 3, mid - 2:mid + 3].sum(axis=(1, 2)) / safe,
            np.sqrt((near**2).sum(axis=(1, 2))) / safe,
            (near > 0).sum(axis=(1, 2)).astype(np.float64),
        ]
    return np.stack(columns, axis=1)


def read_views(sample: Path, field: str, chunk: int = 500):
    """Observables of every event's leading-jet view in ``field``, labels, pt, m0 and the channel names; the
    images are read ``chunk`` events at a time and dropped once their observables are computed."""
    from jettf.detector.cards import CMS
    from jettf.io import read_cms_quark_gluon

    columns = {"obs": [], "labels": [], "pt": [], "m0": []}
    for part in read_cms_quark_gluon(sample, field=field, chunk_size=chunk, check=False):
        columns["obs"].append(view_observables(part.images, CMS.ecal.deta))
        for key in ("labels", "pt", "m0"):
            columns[key].append(getattr(part, key))
        channels = part.channels
    return (*(np.concatenate(v) for v in columns.values()), channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/bench_cms_quark_gluon",
                        help="a bench_cms_quark_gluon.py work directory (its sample/ and jets/)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier

    from jettf import metrics as jm
    from tfds_builders.cms_quark_gluon_images.cms_quark_gluon_images_dataset_builder import Builder

    work = Path(args.work)
    samples = sorted((work / "sample").glob("quark-gluon_data-set_n*.hdf5"))
    if not samples:
        raise SystemExit(f"{work / 'sample'}: no quark-gluon_data-set_n*.hdf5 (run bench_cms_quark_gluon.py first)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"load average at start {os.getloadavg()}")
    start = time.perf_counter()
    views = {"jet": read_views(samples[0], "X_jets"), "gen": read_views(samples[0], "X_jets_gen")}
    seconds = time.perf_counter() - start
    labels, pt, m0 = views["jet"][1:4]
    split = builder_split(labels, Builder.SPLIT_FRACTIONS)
    fit, test = np.concatenate([split["train"], split["validation"]]), split["test"]
    print(f"\n{samples[0].name}: {len(labels)} jets, {len(test)} test; observables {seconds:.0f} s\n")
    print("| view (003 Table 4 row) | trees on 8 observables per channel [95% CI] | ResNet-15 | CNN - trees [95% CI] |")
    print("|---|---|---|---|")
    trees_scores = {}
    for row, cfg, channels, _, _ in TABLE4:
        obs, _, _, _, names = views[cfg]
        keep = [i * len(OBSERVABLES) + k for i, name in enumerate(names) if name in channels.split(",")
                for k in range(len(OBSERVABLES))]
        trees = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, early_stopping=True,
                                               random_state=args.seed)
        trees.fit(obs[fit][:, keep], labels[fit])
        score = trees.predict_proba(obs[test][:, keep])[:, 1]
        trees_scores[row] = score
        ci = jm.bootstrap_ci(jm.roc_auc, labels[test] == 1, score, n_boot=args.n_boot, seed=args.seed)
        cnn, diff = "", ""
        cache = work / "jets" / slug(row) / "bench_test_predictions.npz"
        if cache.exists():
            with np.load(cache) as f:
                # The jet study's test jets, matched to the file's rows by (pt, m0).
                position = {key: i for i, key in enumerate(zip(f["pt"].astype(np.float32), f["m0"].astype(np.float32)))}
                order = np.array([position[key] for key in zip(pt[test], m0[test])])
                cnn_score, cnn_y = f["score"][order], f["y"][order]
            if not np.array_equal(cnn_y, labels[test]):
                raise RuntimeError(f"{cache}: its test labels differ from the sample's test split")
            d = paired_difference(labels[test], cnn_score, score, args.n_boot, args.seed)
            cnn = f"{jm.roc_auc(labels[test] == 1, cnn_score):.3f}"
            diff = f"{d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
        print(f"| {row} | {ci['value']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] | {cnn} | {diff} |")
    print("\nTrees, paired over the test jets (003's single-channel orderings):")
    for a, b in (("Tracks", "ECAL"), ("ECAL", "HCAL"), ("Tracks+ECAL", "ECAL+HCAL")):
        d = paired_difference(labels[test], trees_scores[a], trees_scores[b], args.n_boot, args.seed)
        print(f"  {a} - {b}: {d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]")
    names = views["jet"][4]
    by_channel = views["jet"][0][test].reshape(len(test), len(names), len(OBSERVABLES))
    print("\nEach observable alone on the test jets (AUC, or 1 - AUC where the observable is larger for gluons):\n")
    print("| observable | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for k, observable in enumerate(OBSERVABLES):
        aucs = [jm.roc_auc(labels[test] == 1, by_channel[:, i, k]) for i in range(len(names))]
        print(f"| {observable} | " + " | ".join(f"{max(a, 1 - a):.3f}" for a in aucs) + " |")
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
