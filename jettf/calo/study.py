"""004's two calorimeter studies end to end: sample, features, every network of Tables 3.1 / 4.1, bootstrap
intervals, the acceptance orderings, the guided EFP search and a report (``python -m jettf.calo``).

Electrons vs jets (004 chapter 3, Table 3.1): calo CNNs on the HCAL image, the ECAL image, both (each image its
own conv tower, :mod:`jettf.models.calo_cnn`), both + the seven standard features, and dense networks
(:mod:`jettf.models.dense`) on the seven features with and without the candidate mass.
Prompt vs non-prompt muons (004 chapter 4, Table 4.1): dense networks on the best single isolation cone, the
best pair and the greedy best set of cones; a calo CNN on the 32 x 32 image; PFN and EFN on the list of the
muon's calorimeter cells (angles relative to the muon: ``center="origin"``).

Choices (004 leaves them open or its sizes do not fit 2 CPU cores; each is recorded in ``config.json``):

* Candidates are split once, stratified and seeded, 60 / 20 / 20 into training, validation (early stopping,
  cone selection) and test (every figure). The stored per-candidate weights (pt reweighting) weight the
  training loss and the test figures; unweighted AUCs are reported beside them.
* Intervals are 95% percentile bootstraps over test candidates (1000 resamples); the acceptance orderings are
  judged on paired resamples (the same candidates for both networks): an ordering holds when the lower end of
  the interval of the AUC difference is above 0 (for "~": when the interval contains 0 or the difference is
  below 0.01).
* ``profile="cpu"`` (default): 004's architectures (Table 3.5, App. A.1) with 32 filters per convolution
  instead of 117 / 47 / 56 (5-10x less work per image), PFN / EFN Phi layers of 64 instead of 100, learning
  rate 1e-3 for the CNNs (004's 1e-4 is tuned for 10-20x more candidates), at most ``epochs`` epochs with early
  stopping on the validation loss (best weights kept). ``profile="paper"`` uses 004's values.
* PFN and EFN read the ECAL cells and HCAL towers within the cone, each once at its own granularity (the file's
  ``cells``: ~107 per muon at <mu> = 50), not the image's pixels: the image shares each cell's E_T among the
  pixels it overlaps (an HCAL tower over ~16); on those fragments the PFN was 0.016 below the CNN, on the cells
  it is level with it (the IRC-safe EFN reads the same either way; benchmarks/README.md, section 004). Their
  calorimeter (ECAL or HCAL) is not an input, as it is not the CNN's, whose image sums the two (told it, every
  one of the three networks gains about 0.009; benchmarks/README.md, section 004). The EFN's weights are
  energy fractions, so the image's total E_T (the isolation energy itself) is given beside them as a global
  feature (as 004 section 4.5.1 does for its normalized EFPs); the PFN sees each cell's E_T. The PFN's per-cell
  inputs are 004's (App. A.1.2): E_T, delta eta, delta phi standardized with the training cells' mean and std
  (``particle_features="linear"``), not the zoo's log features for jets (benchmarks/README.md, section 004, has
  the measurements).
* The greedy cone search (004 section 4.4) ranks cone sets by the validation AUC of Fisher's linear
  discriminant of the logs of the cones (closed form) instead of a tuned network per set; the chosen sets
  are then trained with 004's isolation network. It adds cones while the validation AUC gains more than 0.001, up to 8.
* The guided search (:func:`jettf.explain.guided_search`) runs on the test candidates, guided by the best
  image network (electrons: ECAL+HCAL CNN; muons: the PFN or the CNN, whichever has the higher test AUC; 004's
  guide was its PFN, its best), from the seven features (and + mass) /
  the greedy cones + sum pT, over EFPs of the ECAL and HCAL pixels separately (electrons) or of the image
  pixels around the muon (muons). ``profile="paper"`` searches 004's grid (degree <= 7, beta in {1/2, 1, 2},
  kappa in {-1, 0, 1, 2}, all pixels); ``profile="cpu"`` searches :data:`CPU_EFP_GRIDS`, what two cores
  afford in minutes (electrons: degree <= 5 on 004's kappas and betas; muons: degree <= 5, at most 3 nodes,
  kappa 1, beta 1 and 2, on the 128 hardest of the ~800 pile-up-filled pixels: the triangle and
  theta_ab^2 theta_bc^3 that 004 picks are in it). Each ``efp_*`` field given explicitly wins.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from jettf.calo.cards import ELECTRON_FEATURES, ELECTRONS, ISOLATION_RADII, MUONS
from jettf.calo.images import pixel_cells
from jettf.metrics import auc_difference, paired_auc_bootstrap, weighted_roc_auc

__all__ = ["StudyConfig", "CPU_EFP_GRIDS", "PAPER_EFP_GRID", "run_study", "ANCHORS", "electron_networks", "muon_networks", "greedy_cones"]

#: 004 Table 3.1 and Table 4.1 (AUC), the figures this study is set beside (../shared/docs/ANCHORS.md).
ANCHORS = {
    "electrons": {"hcal": 0.82, "ecal": 0.918, "ecal_hcal": 0.972, "ecal_hcal_hl": 0.973, "hl": 0.945,
                  "hl_mass": 0.956},
    "muons": {"cone_1": 0.780, "cone_2": 0.785, "cones_greedy": 0.794, "cnn": 0.842, "efn": 0.843, "pfn": 0.848},
}
#: The acceptance orderings (004 Tables 3.1, 4.1): (better, worse, kind) with kind ">" or "~".
ORDERINGS = {
    "electrons": [("ecal_hcal", "ecal", ">"), ("ecal", "hcal", ">"), ("ecal_hcal", "hl", ">"),
                  ("hl_mass", "hl", ">")],
    "muons": [("pfn", "efn", "~"), ("efn", "cnn", "~"), ("pfn", "cnn", "~"), ("cnn", "cones_greedy", ">"),
              ("pfn", "cones_greedy", ">"), ("efn", "cones_greedy", ">"), ("cones_greedy", "cone_1", ">")],
}
SIMILAR_AUC = 0.01  # "~": |delta AUC| below this, or an interval containing 0


#: 004's EFP grid (sections 3.8, 4.5): degree <= 7, kappa in {-1, 0, 1, 2}, beta in {1/2, 1, 2}, every pixel.
PAPER_EFP_GRID = dict(efp_dmax=7, efp_kappas=(-1.0, 0.0, 1.0, 2.0), efp_betas=(0.5, 1.0, 2.0))
#: What two CPU cores search in minutes per study (``profile="cpu"``; benchmarks/README.md, section 004).
CPU_EFP_GRIDS = {
    "electrons": dict(efp_dmax=5, efp_kappas=(-1.0, 0.0, 1.0, 2.0), efp_betas=(0.5, 1.0, 2.0)),
    "muons": dict(efp_dmax=5, efp_nmax=3, efp_kappas=(1.0,), efp_betas=(1.0, 2.0), efp_max_cells=128),
}


@dataclasses.dataclass
class StudyConfig:
    """Settings of one study run (every field is recorded in ``config.json``)."""

    study: str = "electrons"
    n: int = 5000  # candidates per class
    seed: int = 0
    data_dir: Optional[str] = None  # generated samples: DATA_DIR/004/<study>-n<N>-s<seed>-<card fingerprint>/
    manual_dir: Optional[str] = None  # a directory with electrons.h5 / muons.h5 to use instead
    out: Optional[str] = None  # run directory (default runs/004-<study>-n<N>-s<seed>)
    workers: int = 1
    profile: str = "cpu"
    epochs: int = 30
    patience: int = 5
    batch_size: int = 128
    n_boot: int = 1000
    networks: Optional[Sequence[str]] = None  # subset of the study's network keys (default all)
    search: bool = True
    # The EFP grid of the guided search; None: the profile's grid for the study (module docstring).
    efp_dmax: Optional[int] = None
    efp_nmax: Optional[int] = None
    efp_kappas: Optional[Sequence[float]] = None
    efp_betas: Optional[Sequence[float]] = None
    efp_prime_only: bool = False
    efp_max_cells: Optional[int] = None  # EFPs of the hardest pixels only
    max_cells: Optional[int] = 384  # PFN / EFN inputs: the hardest cells (None: all the file stores)
    search_steps: int = 3
    tune: int = 0  # keras-tuner Bayesian trials for the dense HL network (004 Table 3.4); 0: none
    verbose: bool = True

    def __post_init__(self):
        if self.study not in ("electrons", "muons"):
            raise ValueError(f"study={self.study!r}; expected 'electrons' or 'muons'")
        if self.profile not in ("cpu", "paper"):
            raise ValueError(f"profile={self.profile!r}; expected 'cpu' or 'paper'")
        if self.n < 10:
            raise ValueError(f"n={self.n}: expected at least 10 candidates per class")
        grid = (PAPER_EFP_GRID if self.profile == "paper" else CPU_EFP_GRIDS[self.study])
        for key, value in grid.items():
            if getattr(self, key) is None:
                setattr(self, key, value)


def _say(config: StudyConfig, text: str) -> None:
    if config.verbose:
        print(f"[jettf.calo {config.study}] {text}", file=sys.stderr, flush=True)


# ============================================================================================== inputs
def cells_jet_batch(cells):
    """A JetBatch of cells ``[N, M, >= 3]`` (E_T [GeV], delta eta, delta phi [rad] from the candidate,
    zero-padded), the candidate at the origin as the jet axis: the input of
    :func:`jettf.explain.efp_observables` on calorimeter cells or image pixels."""
    from jettf.jets import JetBatch

    pt, eta, phi = (np.asarray(cells[..., k], np.float64) for k in range(3))
    n = len(pt)
    return JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), jet_pt=pt.sum(axis=1), jet_eta=np.zeros(n),
                                   jet_phi=np.zeros(n), jet_mass=np.zeros(n))


def _cells_batch(image, deta: float, dphi: float, offset=None, max_cells: Optional[int] = None):
    """:func:`cells_jet_batch` of the non-zero pixels of ``[N, H, W]`` (eta / phi relative to the image
    centre); ``offset`` ``[N, 2]`` shifts the pixel grid; ``max_cells`` keeps the hardest pixels only."""
    image = np.asarray(image, np.float64)
    n, h, w = image.shape
    cells = pixel_cells(image, extent=(h * deta / 2, w * dphi / 2), max_cells=max_cells).astype(np.float64)
    if offset is not None:
        real = cells[..., 0] > 0
        cells[..., 1] = np.where(real, cells[..., 1] + offset[:, :1], 0.0)
        cells[..., 2] = np.where(real, cells[..., 2] + offset[:, 1:], 0.0)
    return cells_jet_batch(cells)


def greedy_cones(cones: np.ndarray, y, train, val, weight=None, max_cones: int = 8, tol: float = 1e-3,
                 seed: int = 0) -> List[dict]:
    """004 section 4.4's greedy search through the isolation cones: at each step add the cone that most raises
    the validation AUC of a classifier on the chosen cones (Fisher's linear discriminant of log(I + 0.01) of
    the cones, weighted, closed form: microseconds per set); stop when the gain is below ``tol`` or at
    ``max_cones``. Returns one row per step: ``cones`` (indices), ``radii``, ``val_auc``."""
    y = np.asarray(y)
    w = np.ones(len(y)) if weight is None else np.asarray(weight)
    logs = np.log(np.asarray(cones, np.float64) + 0.01)
    chosen, rows, best_auc = [], [], 0.5
    while len(chosen) < min(max_cones, cones.shape[1]):
        trial = {}
        for k in range(cones.shape[1]):
            if k in chosen:
                continue
            cols = chosen + [k]
            if len(cols) == 1:  # one cone: the cut on it is the classifier (004: "the optimal cone size")
                trial[k] = weighted_roc_auc(y[val], -cones[val, k], w[val])
                continue
            trial[k] = weighted_roc_auc(y[val], logs[val][:, cols] @ _fisher(logs[train][:, cols], y[train], w[train]),
                                    w[val])
        k_best = max(trial, key=trial.get)
        if rows and trial[k_best] - best_auc < tol:
            break
        chosen.append(k_best)
        best_auc = trial[k_best]
        rows.append({"cones": list(chosen), "radii": [ISOLATION_RADII[i] for i in chosen], "val_auc": best_auc})
    return rows


def _fisher(x, y, w):
    """Weighted Fisher discriminant direction: (S0 + S1)^-1 (mu1 - mu0) (signal scores high)."""
    mus, covs = [], []
    for c in (0, 1):
        wc = w[y == c] / w[y == c].sum()
        mu = wc @ x[y == c]
        d = x[y == c] - mu
        mus.append(mu)
        covs.append((d * wc[:, None]).T @ d)
    s = covs[0] + covs[1]
    return np.linalg.solve(s + 1e-9 * np.trace(s) * np.eye(len(s)), mus[1] - mus[0])


# ============================================================================================== networks
def _profile(config: StudyConfig):
    from jettf.models.calo_cnn import BEST as CNN
    from jettf.models.dense import BEST as DENSE

    cnn = {k: dict(v) for k, v in CNN.items()}
    dense = {k: dict(v) for k, v in DENSE.items()}
    pfn = dict(phi_sizes=(100, 100, 100), f_sizes=(100, 100, 100), learning_rate=1e-4)  # 004 App. A.1.2
    if config.profile == "cpu":
        for v in cnn.values():
            v.update(filters=32 if v["filters"] > 32 else v["filters"], learning_rate=1e-3)
        pfn.update(phi_sizes=(64, 64, 64), learning_rate=1e-3)
    return cnn, dense, pfn


def electron_networks(config: StudyConfig) -> List[dict]:
    """The rows of 004 Table 3.1: key, label, model, build options, learning rate, inputs."""
    cnn, dense, _ = _profile(config)
    opts = lambda d: {k: v for k, v in d.items() if k != "learning_rate"}  # noqa: E731
    return [
        dict(key="hcal", label="CNN: HCAL image", model="calo_cnn", inputs=("hcal",), options=opts(cnn["hcal"]),
             learning_rate=cnn["hcal"]["learning_rate"]),
        dict(key="ecal", label="CNN: ECAL image", model="calo_cnn", inputs=("ecal",), options=opts(cnn["ecal"]),
             learning_rate=cnn["ecal"]["learning_rate"]),
        dict(key="ecal_hcal", label="CNN: ECAL + HCAL images", model="calo_cnn", inputs=("ecal", "hcal"),
             options=opts(cnn["ecal_hcal"]), learning_rate=cnn["ecal_hcal"]["learning_rate"]),
        dict(key="ecal_hcal_hl", label="CNN: ECAL + HCAL images + 7 HL features", model="calo_cnn",
             inputs=("ecal", "hcal", "hl"), options=opts(cnn["ecal_hcal"]),
             learning_rate=cnn["ecal_hcal"]["learning_rate"]),
        dict(key="hl", label="Dense: 7 HL features", model="dense", inputs=("hl",), options=opts(dense["hl"]),
             learning_rate=dense["hl"]["learning_rate"]),
        dict(key="hl_mass", label="Dense: 7 HL features + mass", model="dense", inputs=("hl", "mass"),
             options=opts(dense["hl"]), learning_rate=dense["hl"]["learning_rate"]),
    ]


def muon_networks(config: StudyConfig) -> List[dict]:
    """The rows of 004 Table 4.1 (the cone networks' inputs are chosen by :func:`greedy_cones`)."""
    cnn, dense, pfn = _profile(config)
    opts = lambda d: {k: v for k, v in d.items() if k != "learning_rate"}  # noqa: E731
    iso = dense["isolation"]
    deep = dict(phi_sizes=pfn["phi_sizes"], f_sizes=pfn["f_sizes"], center="origin")
    return [
        dict(key="cone_1", label="Dense: best single isolation cone", model="dense", inputs=("cones_1",),
             options=opts(iso), learning_rate=iso["learning_rate"]),
        dict(key="cone_2", label="Dense: best two isolation cones", model="dense", inputs=("cones_2",),
             options=opts(iso), learning_rate=iso["learning_rate"]),
        dict(key="cones_greedy", label="Dense: greedy best set of isolation cones", model="dense",
             inputs=("cones_greedy",), options=opts(iso), learning_rate=iso["learning_rate"]),
        dict(key="cnn", label="CNN: calorimeter image", model="calo_cnn", inputs=("image",),
             options=opts(cnn["muon_image"]), learning_rate=cnn["muon_image"]["learning_rate"]),
        # The EFN's energy weights are fractions z_i: the cells' total E_T (the isolation energy itself) is given
        # beside them, as 004 section 4.5.1 does for its normalized EFPs.
        dict(key="efn", label="EFN: calorimeter cells + sum E_T", model="efn", inputs=("cells", "sum_pt"),
             options=deep, learning_rate=pfn["learning_rate"]),
        # 004 App. A.1.2: the PFN's inputs are the cells' values, standardized with the training set's statistics.
        dict(key="pfn", label="PFN: calorimeter cells", model="pfn", inputs=("cells",),
             options=dict(deep, particle_features="linear"), learning_rate=pfn["learning_rate"]),
    ]


def _model_inputs(spec: dict, data: dict, index) -> dict:
    """The Keras input dict of ``spec`` for candidates ``index``."""
    images = [k for k in spec["inputs"] if k in ("ecal", "hcal", "image")]
    features = [k for k in spec["inputs"] if k not in images and k != "cells"]  # per-candidate numbers, to F
    x = {}
    if images:
        x["image"] = data[images[0]][index]
        for extra in images[1:]:
            x[extra] = data[extra][index]
    if "cells" in spec["inputs"]:
        x["constituents"] = data["cells"][index]
    if features:
        x["global_features"] = np.concatenate([data[k][index].reshape(len(index), -1) for k in features], axis=1)
    return x


def _build(spec: dict, data: dict, train, seed: int):
    import jettf.models as zoo

    x = _model_inputs(spec, data, train[:2])
    n_global = x["global_features"].shape[1] if "global_features" in x else 0
    options = dict(spec["options"])
    if spec["model"] == "calo_cnn":
        options["standardize"] = True
        extra = {k: v.shape[1:] for k, v in x.items() if k not in ("image", "global_features")}
        if extra:
            options["extra_images"] = extra
        side = min(x["image"].shape[1:3])
        options["conv_blocks"] = min(options["conv_blocks"], max(side.bit_length() - 1, 1))
        shape = x["image"].shape[1:]
    elif spec["model"] in ("pfn", "efn"):
        shape = (None, 4)
    else:
        shape = None
    model = zoo.build(spec["model"], 2, input_shape=shape, n_global_features=n_global, seed=seed,
                      class_names=["background", "signal"], **options)
    xt = _model_inputs(spec, data, train)
    if n_global:
        zoo.adapt_normalization(model, global_features=xt["global_features"])
    if options.get("particle_features") == "linear":
        zoo.adapt_normalization(model, constituents=xt["constituents"])
    if spec["model"] == "calo_cnn":
        for name in [k for k in xt if k != "global_features"]:
            model.get_layer(f"{name}_norm").adapt(xt[name].astype("float32"))
    return model


def fit_predict(spec: dict, data: dict, y, weight, train, val, test, config: StudyConfig, seed: int):
    """Train one network (weighted loss, early stopping on the weighted validation loss, best weights kept)
    and return (test signal scores, record)."""
    import keras

    start = time.perf_counter()
    model = _build(spec, data, train, seed)
    model.compile(optimizer=keras.optimizers.Adam(spec["learning_rate"]), loss="sparse_categorical_crossentropy",
                  weighted_metrics=[])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    history = model.fit(
        _model_inputs(spec, data, train), y[train], sample_weight=weight[train], batch_size=config.batch_size,
        epochs=config.epochs, validation_data=(_model_inputs(spec, data, val), y[val], weight[val]),
        callbacks=[stop], verbose=0, shuffle=True,
    )
    probs = model.predict(_model_inputs(spec, data, test), batch_size=1024, verbose=0)
    record = {"epochs": len(history.history["loss"]), "best_val_loss": float(min(history.history["val_loss"])),
              "params": int(model.count_params()), "seconds": round(time.perf_counter() - start, 1)}
    return np.asarray(probs[:, 1], np.float64), record


# ============================================================================================== the study
def _split(y, seed: int, fractions=(0.6, 0.2, 0.2)):
    rng = np.random.default_rng(seed)
    parts = [[], [], []]
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        a = int(round(fractions[0] * len(idx)))
        b = a + int(round(fractions[1] * len(idx)))
        for p, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            p.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def load_sample(config: StudyConfig):
    """The study's candidates: ``manual_dir``'s file, or a generated sample (made once, then reused)."""
    from jettf.generate.leptons import generate_lepton_sample
    from jettf.io.leptons import ELECTRONS_FILE, MUONS_FILE, read_calo_sample

    name = ELECTRONS_FILE if config.study == "electrons" else MUONS_FILE
    if config.manual_dir is not None:
        path = Path(config.manual_dir) / name
        sample = read_calo_sample(path, config.study)
        return sample, {"kind": "manual", "path": str(path)}
    from jettf.data import default_data_dir

    from jettf.calo.cards import get_lepton_card

    # The card's fingerprint in the folder name: a changed physics card never reuses an older sample.
    card = get_lepton_card(config.study)
    where = (Path(config.data_dir or default_data_dir()) / "004"
             / f"{config.study}-n{config.n}-s{config.seed}-{card.fingerprint()}")
    path = where / name
    if not path.exists():
        _say(config, f"generating {config.n} candidates per class into {where} ({config.workers} workers)")
        generate_lepton_sample(config.study, config.n, where, seed=config.seed, workers=config.workers,
                               progress=config.verbose)
    return read_calo_sample(path, config.study), {"kind": "generated", "path": str(path)}


def _inputs(config: StudyConfig, sample) -> dict:
    from jettf.features.calorimeter import candidate_mass, electron_features, isolation_cones

    if config.study == "electrons":
        hl = electron_features(sample["ecal_e"], sample["ecal_et"], sample["hcal_et"])
        mass = candidate_mass(sample["ecal_et"], sample["hcal_et"], sample["hcal_offset"])
        return {"ecal": sample["ecal_et"][..., None], "hcal": sample["hcal_et"][..., None],
                "hl": hl.astype(np.float32), "mass": mass[:, None].astype(np.float32)}
    cones = isolation_cones(sample["image_et"], sample["pt"], cone=MUONS.cone)
    return {"image": sample["image_et"][..., None], "cones": cones.astype(np.float32),
            "cells": sample["cells"][:, :config.max_cells, :4],
            "sum_pt": sample["image_et"].sum(axis=(1, 2))[:, None].astype(np.float32)}


def _search(config: StudyConfig, sample, data, y, test, scores, guide_key: str, starts: dict) -> List[dict]:
    """The guided EFP search from each start set; returns ``[{start, table, summary, result}]``."""
    from jettf.explain import EFPGrid, Observables, efp_observables, guided_search

    grid = EFPGrid(dmax=config.efp_dmax, kappas=tuple(config.efp_kappas), betas=tuple(config.efp_betas),
                   nmax=config.efp_nmax, prime_only=config.efp_prime_only)
    t0 = time.perf_counter()
    blocks = []
    if config.study == "electrons":
        from jettf.detector import get_card

        det = get_card(ELECTRONS.detector)
        for name, image, (deta, dphi) in (("ecal", sample["ecal_et"][test], (det.ecal.deta, det.ecal.dphi)),
                                          ("hcal", sample["hcal_et"][test], (det.hcal.deta, det.hcal.dphi))):
            keep = image.reshape(len(image), -1).max(axis=1) > 0
            if not keep.all():  # EFPs need at least one cell: candidates without HCAL cells get zeros
                obs_part = efp_observables(_cells_batch(image[keep], deta, dphi), grid)
                values = np.zeros((len(image), len(obs_part)))
                values[keep] = obs_part.values
                obs = Observables(values, obs_part.names, obs_part.info)
            else:
                obs = efp_observables(_cells_batch(image, deta, dphi), grid)
            blocks.append(Observables(obs.values, tuple(f"{name}_{n}" for n in obs.names),
                                      tuple({**i, "name": f"{name}_{i['name']}", "calorimeter": name}
                                            for i in obs.info)))
    else:
        width = 2 * MUONS.cone / MUONS.pixels
        obs = efp_observables(_cells_batch(sample["image_et"][test], width, width, max_cells=config.efp_max_cells),
                              grid)
        blocks.append(obs)
    candidates = Observables.concatenate(blocks)
    seconds = round(time.perf_counter() - t0, 1)
    _say(config, f"guided search: {len(candidates)} EFP candidates on {len(test)} test candidates ({seconds} s)")
    out = []
    for label, columns in starts.items():
        start = Observables.from_dict({k: v[test] for k, v in columns.items()})
        result = guided_search(scores[guide_key], y[test], candidates, start, max_steps=config.search_steps,
                               seed=config.seed, n_pairs=50_000)
        kept = [r for r in result.rows if r["step"] > 0 and r["kept"]]
        first, last = result.rows[0]["auc"], (kept[-1]["auc"] if kept else result.rows[0]["auc"])
        gap = result.network_auc - first
        closed = (last - first) / gap if gap > 0 else float("nan")  # 004 Tables 3.2 / 4.1: share of the gap closed
        gap_text = (f"Gap to the network closed: {closed:.0%}" if gap > 0
                    else "No gap to close: the start set's AUC is already the network's or above")
        out.append({"start": label, "guide": guide_key, "table": result.table(),
                    "summary": result.summary() + f" {gap_text} (AUC {first:.4f} -> "
                    f"{last:.4f}, network {result.network_auc:.4f}, same evaluation candidates).",
                    "gap_closed": closed, "result": result.to_dict(), "n_candidates": len(candidates),
                    "efp_seconds": seconds})
        _say(config, f"guided search from {label}: {result.summary()}")
    return out


def _mean_images(sample, config: StudyConfig, out: Path) -> List[str]:
    from jettf.plots import plot_average_images

    y = sample.labels
    card = ELECTRONS if config.study == "electrons" else MUONS
    names = card.class_names
    paths = []
    if config.study == "electrons":
        from jettf.detector import get_card

        det = get_card(ELECTRONS.detector)
        for key, calo, side in (("ecal_et", det.ecal, ELECTRONS.ecal_pixels), ("hcal_et", det.hcal, 8)):
            half_eta, half_phi = side * calo.deta / 2, side * calo.dphi / 2
            means = {names[c]: sample[key][y == c].mean(axis=0) for c in (1, 0)}
            paths.append(str(plot_average_images(means, (-half_eta, half_eta, -half_phi, half_phi),
                                                 out / f"mean_{key}.png", channel_names=[key.split("_")[0].upper()
                                                                                        + " E_T"], units=["GeV"],
                                                 title=f"004 Fig. {'3.2' if key == 'ecal_et' else '3.3'}: mean "
                                                       "images")))
    else:
        means = {names[c]: sample["image_et"][y == c].mean(axis=0) for c in (1, 0)}
        paths.append(str(plot_average_images(means, MUONS.cone, out / "mean_image_et.png", channel_names=["E_T"],
                                             units=["GeV"], title="004 Fig. 4.1: mean calorimeter images")))
    return paths


def _roc_plot(y, scores: dict, weight, labels: dict, path: Path, title: str) -> str:
    from sklearn import metrics as skm

    from jettf.plots import new_figure, save_figure

    fig = new_figure((11.0, 4.5), 100)
    ax1, ax2 = fig.subplots(1, 2)
    for key, s in scores.items():
        fpr, tpr, _ = skm.roc_curve(y, s, sample_weight=weight)
        auc = weighted_roc_auc(y, s, weight)
        ax1.plot(fpr, tpr, label=f"{labels[key]} ({auc:.3f})")
        ok = fpr > 0
        ax2.plot(tpr[ok], 1.0 / fpr[ok], label=labels[key])
    floor = 1.0 / max(float(np.sum(np.asarray(y) == 0)), 1.0)
    grid = np.logspace(np.log10(floor), 0, 50)
    ax1.plot(grid, grid, ":", color="grey")
    ax1.set(xlabel="background efficiency (weighted)", ylabel="signal efficiency", title=f"{title}: ROC",
            xscale="log", xlim=(floor, 1.0))
    ax1.legend(fontsize=7, loc="lower right")
    ax2.set(xlabel="signal efficiency", ylabel="background rejection 1/eps_B", yscale="log",
            title=f"{title}: rejection")
    return str(save_figure(fig, path))


def _table(config: StudyConfig, specs, boot, unweighted, records, test_counts) -> str:
    anchors = ANCHORS[config.study]
    ref = "004 Table 3.1" if config.study == "electrons" else "004 Table 4.1"
    lines = [f"| network | AUC (weighted, 95% CI) | AUC (unweighted) | params | epochs | {ref} AUC |",
             "|---|---|---|---:|---:|---:|"]
    for spec in specs:
        k = spec["key"]
        if k not in boot:
            continue
        b = boot[k]
        lines.append(f"| {spec['label']} | {b['auc']:.4f} [{b['low']:.4f}, {b['high']:.4f}] | {unweighted[k]:.4f} "
                     f"| {records[k]['params']:,} | {records[k]['epochs']} | {anchors.get(k, float('nan')):.3f} |")
    lines.append(f"\nTest candidates: {test_counts}.")
    return "\n".join(lines)


def _orderings(config: StudyConfig, boot, specs) -> tuple:
    labels = {s["key"]: s["label"] for s in specs}
    rows, lines = [], ["| ordering (004) | AUC difference | 95% CI (paired) | 004 difference | holds |",
                       "|---|---:|---|---:|---|"]
    for a, b, kind in ORDERINGS[config.study]:
        if a not in boot or b not in boot:
            continue
        d = auc_difference(boot[a], boot[b])
        if kind == ">":
            holds = d["low"] > 0
        else:
            holds = (d["low"] <= 0 <= d["high"]) or abs(d["delta"]) < SIMILAR_AUC
        ref = ANCHORS[config.study][a] - ANCHORS[config.study][b]
        rows.append({"better": a, "worse": b, "kind": kind, **d, "anchor_delta": ref, "holds": bool(holds)})
        lines.append(f"| {labels[a]} {kind} {labels[b]} | {d['delta']:+.4f} | [{d['low']:+.4f}, {d['high']:+.4f}] "
                     f"| {ref:+.3f} | {'yes' if holds else 'no'} |")
    return rows, "\n".join(lines)


def _tune_dense(config: StudyConfig, data, y, weight, train, val, key_inputs, seed: int) -> dict:
    """keras-tuner Bayesian search of the dense HL network over 004 Table 3.4 (``tuning.hypermodels.Dense``)."""
    import tempfile

    import keras
    import keras_tuner as kt

    from tuning.hypermodels import Dense as DenseSpace

    space = DenseSpace()
    spec_base = dict(key="tune", model="dense", inputs=key_inputs)

    class _Adapter(kt.HyperModel):
        def build(self, hp):
            settings = space.build(hp)
            spec = dict(spec_base, options=settings["model_options"], learning_rate=settings["learning_rate"])
            model = _build(spec, data, train, seed)
            model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]),
                          loss="sparse_categorical_crossentropy", weighted_metrics=[])
            return model

        def fit(self, hp, model, *args, **kwargs):
            spec = dict(spec_base)
            return model.fit(_model_inputs(spec, data, train), y[train], sample_weight=weight[train],
                             validation_data=(_model_inputs(spec, data, val), y[val], weight[val]),
                             batch_size=config.batch_size, epochs=config.epochs, verbose=0,
                             callbacks=[keras.callbacks.EarlyStopping(patience=config.patience,
                                                                      restore_best_weights=True)])

    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.BayesianOptimization(_Adapter(), objective="val_loss", max_trials=config.tune, seed=seed,
                                        directory=tmp, project_name="dense", overwrite=True)
        tuner.search()
        best = tuner.get_best_hyperparameters(1)[0].values
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in best.items()}


def run_study(config: StudyConfig) -> dict:
    """Run one study (module docstring); writes the run directory and returns the summary dict (``text``: its
    tables as markdown, as the CLI prints them; ``report``: the path of report.md)."""
    from jettf.training.trainer import quiet_retracing
    from jettf.utils import atomic_path, write_json

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    out = Path(config.out or f"runs/004-{config.study}-n{config.n}-s{config.seed}")
    out.mkdir(parents=True, exist_ok=True)
    sample, source = load_sample(config)
    t_sample = time.perf_counter() - t_start
    y = sample.labels
    weight = sample["weight"].astype(np.float64)
    train, val, test = _split(y, config.seed)
    _say(config, f"{len(sample)} candidates ({int((y == 1).sum())} signal); train/val/test {len(train)}/{len(val)}/"
                 f"{len(test)}")
    t0 = time.perf_counter()
    data = _inputs(config, sample)
    t_features = time.perf_counter() - t0
    specs = electron_networks(config) if config.study == "electrons" else muon_networks(config)
    if config.networks:
        unknown = sorted(set(config.networks) - {s["key"] for s in specs})
        if unknown:
            raise ValueError(f"networks {unknown}: expected some of {[s['key'] for s in specs]}")
        specs = [s for s in specs if s["key"] in config.networks]
    extras = {}
    if config.study == "muons":
        t0 = time.perf_counter()
        rows = greedy_cones(data["cones"], y, train, val, weight, seed=config.seed)
        extras["greedy_cones"] = rows
        extras["greedy_seconds"] = round(time.perf_counter() - t0, 1)
        chosen = rows[-1]["cones"]
        pair = rows[1]["cones"] if len(rows) > 1 else rows[0]["cones"]
        data["cones_1"] = data["cones"][:, rows[0]["cones"]]
        data["cones_2"] = data["cones"][:, pair]
        data["cones_greedy"] = data["cones"][:, chosen]
        _say(config, "greedy cones: " + ", ".join(f"{r['radii']} -> {r['val_auc']:.4f}" for r in rows))
    if config.tune:  # 004 Table 3.4's Bayesian search; the dense networks then use the best point
        key_inputs = ("hl",) if config.study == "electrons" else ("cones_greedy",)
        with quiet_retracing():
            best = extras["tuned_dense"] = _tune_dense(config, data, y, weight, train, val, key_inputs, config.seed)
        _say(config, f"tuned dense network (004 Table 3.4 space): {best}")
        for spec in specs:
            if spec["model"] == "dense":
                spec["options"] = {k: best[k] for k in ("dense_layers", "units", "dropout")}
                spec["learning_rate"] = best["learning_rate"]
    scores, records = {}, {}
    for i, spec in enumerate(specs):
        with quiet_retracing():  # one network after another in this process: retracing is expected
            s, rec = fit_predict(spec, data, y, weight, train, val, test, config, seed=config.seed + 101 * i)
        scores[spec["key"]], records[spec["key"]] = s, rec
        _say(config, f"{spec['label']}: AUC {weighted_roc_auc(y[test], s, weight[test]):.4f} "
                     f"({rec['epochs']} epochs, {rec['seconds']} s)")
    boot = paired_auc_bootstrap(y[test], scores, weight[test], n_boot=config.n_boot, seed=config.seed)
    unweighted = {k: weighted_roc_auc(y[test], s) for k, s in scores.items()}
    card = ELECTRONS if config.study == "electrons" else MUONS
    counts = {card.class_names[c]: int((y[test] == c).sum()) for c in (1, 0)}
    table = _table(config, specs, boot, unweighted, records, counts)
    ordering_rows, ordering_table = _orderings(config, boot, specs)
    t_networks = time.perf_counter() - t_start - t_sample - t_features

    search = []
    t0 = time.perf_counter()
    if config.search:
        if config.study == "electrons" and "ecal_hcal" in scores:
            hl = {name: data["hl"][:, i] for i, name in enumerate(ELECTRON_FEATURES)}
            search = _search(config, sample, data, y, test, scores, "ecal_hcal",
                             {"7 HL": hl, "7 HL + mass": {**hl, "mass": data["mass"][:, 0]}})
        elif config.study == "muons" and ("pfn" in scores or "cnn" in scores):
            # The stronger cell network guides (004's PFN was its best; here PFN and CNN trade places by sample).
            guide = max((k for k in ("pfn", "cnn") if k in scores),
                        key=lambda k: weighted_roc_auc(y[test], scores[k], weight[test]))
            cones = {f"iso_{ISOLATION_RADII[k]:g}": data["cones"][:, k] for k in extras["greedy_cones"][-1]["cones"]}
            search = _search(config, sample, data, y, test, scores, guide,
                             {"greedy cones + sum pT": {**cones, "sum_pt": data["sum_pt"][:, 0]}})
    t_search = time.perf_counter() - t0

    plots = _mean_images(sample, config, out)
    labels = {s["key"]: s["label"] for s in specs}
    title = "004 electrons vs jets" if config.study == "electrons" else "004 prompt vs non-prompt muons"
    plots.append(_roc_plot(y[test], scores, weight[test], labels, out / "roc_rejection.png", title))
    summary = {
        "study": config.study, "config": dataclasses.asdict(config), "source": source,
        "sizes": {"candidates": len(sample), "per_class": config.n, "train": len(train), "validation": len(val),
                  "test": len(test)},
        "networks": {k: {"label": labels[k], "auc": boot[k]["auc"], "ci": [boot[k]["low"], boot[k]["high"]],
                         "auc_unweighted": unweighted[k], "anchor": ANCHORS[config.study].get(k), **records[k]}
                     for k in scores},
        "orderings": ordering_rows, "search": [{k: v for k, v in s.items() if k != "table"} for s in search],
        **extras,
        "seconds": {"sample": round(t_sample, 1), "features": round(t_features, 1), "networks": round(t_networks, 1),
                    "search": round(t_search, 1), "total": round(time.perf_counter() - t_start, 1)},
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "cpu_count": os.cpu_count(),
    }
    write_json(out / "metrics.json", json.loads(json.dumps(summary, default=_json_default)))
    report = _report(config, summary, table, ordering_table, search, plots, extras)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report)
    summary["table"], summary["ordering_table"], summary["report"] = table, ordering_table, str(out / "report.md")
    summary["search_tables"] = [s["table"] for s in search]
    summary["text"] = "\n\n".join([table, ordering_table, *summary["search_tables"]])
    return summary


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _report(config, summary, table, ordering_table, search, plots, extras) -> str:
    card = ELECTRONS if config.study == "electrons" else MUONS
    title = ("Electrons vs jets (004 chapter 3)" if config.study == "electrons"
             else "Prompt vs non-prompt muons (004 chapter 4)")
    lines = [f"# {title}", "", f"Sample: {summary['source']['kind']} `{summary['source']['path']}` ({card.reference});",
             f"{summary['sizes']['per_class']} candidates per class, split train/validation/test "
             f"{summary['sizes']['train']}/{summary['sizes']['validation']}/{summary['sizes']['test']}; profile "
             f"`{config.profile}`; seed {config.seed}. Time: {summary['seconds']}; load average "
             f"{summary['load_average']} on {summary['cpu_count']} cores.", "",
             "AUCs use the stored pt-reweighting weights; intervals are 95% bootstrap intervals over the test "
             "candidates. 004's figures were measured on 10-20x more candidates with Delphes.", "", table, "",
             "## Orderings (004 Tables 3.1 / 4.1)", "", ordering_table, ""]
    if "greedy_cones" in extras:
        lines += ["## Greedy search through the isolation cones (validation AUC)", "",
                  "| cones | radii | validation AUC |", "|---:|---|---:|"]
        lines += [f"| {len(r['cones'])} | {r['radii']} | {r['val_auc']:.4f} |" for r in extras["greedy_cones"]]
        lines.append("")
    for s in search:
        lines += [f"## Guided EFP search from {s['start']} (guide: {s['guide']}; {s['n_candidates']} candidates; "
                  "004 Tables 3.2 / 4.1)", "", s["table"], "", s["summary"], ""]
    lines += ["## Figures", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines)
