"""003's studies on a generated CMS end-to-end sample, beside 003's numbers (ANCHORS.md).

    python benchmarks/bench_cms_quark_gluon.py [--work runs/bench_cms_quark_gluon] [--n-events 3000]
        [--pileup 20] [--epochs 10] [--event-epochs 12] [--workers 2] [--n-boot 1000] [--quick] [--rows ECAL,HCAL]
        [--event-models C,C-Zero,C-Gen]

1. Sample: ``python -m jettf.generate cms_quark_gluon`` (``--n-events`` di-gluon and di-quark events, pile-up
   <mu> ``--pileup``), built into ``cms_quark_gluon_images/jet-nN`` and ``gen-nN`` (70/10/20 split per class).
2. Jet classification (003 Table 4): ResNet-15 through the normal trainer (``jettf.training.run``, the
   ``cms_quark_gluon_images`` preset: Adam 5e-4, batches of 32, per-pixel standardization, flips, the epoch of
   lowest validation loss) on each channel set (``--channels``), ``--epochs`` epochs, ``--workers`` rows side by
   side in processes of their own; test AUC and 1/FPR at TPR 0.7 with 95% bootstrap intervals, and paired
   bootstrap intervals of the AUC differences behind 003's orderings (the same test jets for every row).
3. Event classification (003 Tables 3, 6, 7): A, an FCN 128x2 on the two jets' q/g scores (the
   Tracks+ECAL+HCAL jet model on the leading and sub-leading jet views); B, plus both jets' (pt, eta, phi, m);
   both trained on the validation events (jets the jet model never saw; a quarter of them for early stopping).
   C, ResNet-15 on the 280 x 360 full-detector image (tracks, ECAL, HCAL; each channel divided by the jet
   model's standardization divisor from the training events' jet views (``view_divisor``), random flips,
   ``--event-epochs`` epochs, the epoch of lowest validation loss); C-Gen on the
   generator-level EM/Had image; C-Zero on the detector image with pixels outside both 125 x 125 jet windows
   zeroed; C evaluated on zeroed images and C-Zero on full ones (Table 7). Test: the test events (the same
   rows as the jet study's test split).

Sizes: at the defaults (3,000 events per class) every jet ordering points 003's way (Tracks > ECAL and
Tracks+ECAL > ECAL+HCAL not significantly); the image event classifiers need more events (C is 0.023 below B at
3,000 per class and level with it at 6,000), so the event orderings are run with the one jet model A and B need
(about 69 minutes on an idle machine; benchmarks/README.md):

    python benchmarks/bench_cms_quark_gluon.py --n-events 6000 --rows Tracks+ECAL+HCAL --event-models C,C-Gen \
        --work runs/bench_cms_6000

Every jet ordering holds (the strict ones significantly) at 12,000 events per class, in 55 minutes from scratch on
2 cores with 8 jet epochs (generation and build 16 of them; 63-64 minutes with 10; at 6,000 ECAL > HCAL is level:
the crystal-level ECAL view needs the training jets):

    python benchmarks/bench_cms_quark_gluon.py --n-events 12000 --epochs 8 --skip-events --work runs/bench_cms_12000

Everything resumes: the sample from its shards, the datasets and jet runs from disk, each event model from its
result file. Prints markdown tables and writes ``WORK/results.json``; the average images per class and channel
(003 Figure 2) are in the Tracks+ECAL+HCAL run's report (``WORK/jets/tracks_ecal_hcal/plots/average_images.png``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

# 003 Table 4 (jet image, ROC AUC, 1/FPR at TPR 0.7) and the dataset config and channels of each row.
TABLE4 = [
    ("Generated EM+Had", "gen", "em,had", 0.854, 6.46),
    ("Tracks+ECAL+HCAL", "jet", "tracks,ecal,hcal", 0.807, 4.45),
    ("Tracks+ECAL", "jet", "tracks,ecal", 0.804, 4.35),
    ("ECAL+HCAL", "jet", "ecal,hcal", 0.781, 3.76),
    ("Tracks", "jet", "tracks", 0.782, 3.73),
    ("ECAL", "jet", "ecal", 0.760, 3.28),
    ("HCAL", "jet", "hcal", 0.682, 2.27),
]
TABLE4_ROWS = {r[0]: r for r in TABLE4}
# 003 Tables 6 and 7.
TABLE6 = {
    "A": ("A: 2 x q/g score", 0.882, 8.44),
    "B": ("B: 2 x q/g score + jet 4-momenta", 0.888, 9.04),
    "C": ("C: full detector image", 0.889, 9.05),
    "C-Gen": ("C-Gen: full detector image, generated particles", 0.911, 12.92),
    "C-Zero": ("C-Zero: full detector image, jet windows only", 0.887, 8.95),
    "C on C-Zero": ("C, evaluated on C-Zero images", 0.883, 8.56),
    "C-Zero on C": ("C-Zero, evaluated on C images", 0.884, 8.58),
}
# 003's orderings (issue 14): (better, relation, worse).
JET_ORDERINGS = [("Tracks", ">", "ECAL"), ("ECAL", ">", "HCAL"), ("Tracks+ECAL+HCAL", ">=", "Tracks+ECAL"),
                 ("Tracks+ECAL", ">", "ECAL+HCAL"), ("Generated EM+Had", ">", "Tracks+ECAL+HCAL"),
                 ("Generated EM+Had", ">", "Tracks+ECAL"), ("Generated EM+Had", ">", "ECAL+HCAL"),
                 ("Generated EM+Had", ">", "Tracks")]
EVENT_ORDERINGS = [("C", "~", "B"), ("B", ">=", "A"), ("C", ">=", "A"), ("C-Gen", ">", "C")]
CLASSES = ["gluon", "quark"]
IMAGE_EVENT_MODELS = ("C", "C-Zero", "C-Gen")  # trained here; A and B reuse the jet model


def slug(name: str) -> str:
    return name.lower().replace("+", "_").replace(" ", "_")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- figures
def figures(y, score, n_boot: int, seed: int) -> dict:
    """AUC and 1/FPR at TPR 0.7 with 95% bootstrap intervals (quark = signal)."""
    from jettf import metrics as jm

    probs = np.stack([1.0 - score, score], axis=1)
    m = jm.evaluate_predictions(y, probs, CLASSES, signal_class="quark", n_boot=n_boot, seed=seed)
    return {"auc": m["auc"], "auc_ci": m["ci"]["auc"], "inv_fpr": m["inverse_fpr_at_tpr_0.7"],
            "inv_fpr_ci": m["ci"]["inverse_fpr_at_tpr_0.7"], "n": m["n_jets"]}


def paired_difference(y, a, b, n_boot: int, seed: int) -> dict:
    """AUC(a) - AUC(b) on the same jets, with a paired bootstrap 95% interval (the same resamples for both)."""
    from jettf import metrics as jm

    diff = lambda t, s: jm.roc_auc(t, s[:, 0]) - jm.roc_auc(t, s[:, 1])  # noqa: E731
    ci = jm.bootstrap_ci(diff, np.asarray(y) == 1, np.stack([a, b], axis=1), n_boot=n_boot, seed=seed)
    return {"value": ci["value"], "ci": [ci["low"], ci["high"]]}


def verdict(relation: str, d: dict) -> str:
    """Whether ``better relation worse`` holds, from the paired difference and its interval."""
    low, high = d["ci"]
    if relation == "~":
        return "holds (interval contains 0)" if low <= 0 <= high else (
            "differs: first higher" if low > 0 else "differs: first lower")
    if low > 0:
        return "holds (significant)"
    if relation == ">=" and high >= 0:
        return "holds (not significantly lower)"
    if d["value"] > 0:
        return "same direction, not significant"
    return "reversed (significant)" if high < 0 else "reversed, not significant"


# --------------------------------------------------------------------------- jet study
def _init_row_worker(parent_pid: int, main_thread: bool, threads: int) -> None:
    """A row process: dies with the bench (:func:`jettf.utils.init_worker`), TensorFlow on ``threads`` intra- and
    inter-op threads (set before any TF op runs)."""
    import tensorflow as tf

    from jettf.utils import init_worker

    init_worker(parent_pid, main_thread)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def train_jet_row(args, row: str, data_dir: str, sample_dir: Path, work: Path) -> None:
    """Train one 003 Table 4 row through the trainer and keep its test predictions and times in its run
    directory (``bench_test_predictions.npz``, ``bench_seconds.json``); a kept row is not trained again."""
    from jettf.training import RunDir
    from jettf.training.config import resolve
    from jettf.training.trainer import run
    from jettf.utils import atomic_path

    _, cfg, channels, _, _ = TABLE4_ROWS[row]
    run_dir = work / "jets" / slug(row)
    if (run_dir / "bench_test_predictions.npz").exists():
        return
    config = resolve(task="binary", dataset=f"cms_quark_gluon_images/{cfg}", channels=channels,
                     epochs=args.epochs, data_dir=data_dir, manual_dir=str(sample_dir), n_jets=args.n_events,
                     n_boot=args.n_boot, seed=args.seed)
    start, cpu = time.time(), time.process_time()
    say(f"jet study: {row} (channels {channels}) -> {run_dir}")
    run(config, run_dir, log=lambda m: None if m.startswith("1/") else say(f"  {row}: {m}"))
    with np.load(RunDir(run_dir).predictions_path) as f:
        y, probs, jet = f["y"], f["probs"], f["jet"]
    seconds = {"wall": time.time() - start, "cpu": time.process_time() - cpu}
    (run_dir / "bench_seconds.json").write_text(json.dumps(seconds))
    with atomic_path(run_dir / "bench_test_predictions.npz") as tmp:  # last: the mark of a finished row
        np.savez(tmp, y=y, score=probs[:, 1], pt=jet[:, 0], m0=jet[:, 3])


def jet_study(args, data_dir: str, sample_dir: Path, work: Path) -> dict:
    """003 Table 4 through the trainer, ``args.workers`` rows side by side; returns {row: {figures, predictions}}.

    The rows are independent: with several workers each row of a wave trains in its own process on
    ``cores // workers`` TensorFlow threads (two one-thread ResNet-15 fits on 2 cores get through the study
    faster than one two-thread fit after another; benchmarks/README.md), rows of as many channels side by side
    so a wave ends together; a last wave of one row trains here, on every core.
    """
    import multiprocessing
    import threading
    from concurrent import futures

    from jettf.utils import stop_pool, worker_call

    rows = [r[0] for r in TABLE4 if not args.rows or r[0] in args.rows]
    todo = sorted((row for row in rows if not (work / "jets" / slug(row) / "bench_test_predictions.npz").exists()),
                  key=lambda row: -len(TABLE4_ROWS[row][2].split(",")))
    cores = os.cpu_count() or 1
    while todo:  # waves of up to --workers rows; a last, smaller wave gets the cores the others leave
        wave, todo = todo[:max(1, args.workers)], todo[max(1, args.workers):]
        if len(wave) == 1:
            train_jet_row(args, wave[0], data_dir, sample_dir, work)
            continue
        threads = max(1, cores // len(wave))
        say(f"jet study: {', '.join(wave)} side by side, {threads} TensorFlow thread(s) each")
        initargs = (os.getpid(), threading.current_thread() is threading.main_thread(), threads)
        pool = futures.ProcessPoolExecutor(len(wave), mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_row_worker, initargs=initargs)
        try:
            for job in [pool.submit(worker_call, train_jet_row, args, row, data_dir, sample_dir, work)
                        for row in wave]:
                job.result()
        except BaseException:  # Ctrl-C, SIGTERM or a row's error: stop the other rows now
            stop_pool(pool)
            raise
        pool.shutdown()
    out = {}
    for row in rows:
        run_dir = work / "jets" / slug(row)
        with np.load(run_dir / "bench_test_predictions.npz") as f:
            pred = {k: f[k] for k in f.files}
        seconds = json.loads((run_dir / "bench_seconds.json").read_text())
        out[row] = {"figures": figures(pred["y"], pred["score"], args.n_boot, args.seed), "pred": pred,
                    "seconds": seconds, "run_dir": str(run_dir)}
        f = out[row]["figures"]
        say(f"  {row}: AUC {_fmt_ci(f['auc'], f['auc_ci'])}, 1/FPR {_num(f['inv_fpr'], 2)}; {seconds['wall']:.0f} s")
    return out


# --------------------------------------------------------------------------- event study
def builder_split(labels: np.ndarray, fractions: dict) -> dict:
    """Row indices of each split, as ``JetImageBuilder._plan`` assigns them for ``SPLIT_BY = "fraction"``:
    per class, the rows in file order, cut at the rounded cumulative fractions."""
    names = list(fractions)
    frac = np.array([fractions[s] for s in names], dtype=np.float64)
    out = {s: [] for s in names}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        edges = np.round(np.concatenate([[0.0], np.cumsum(frac)]) / frac.sum() * len(members)).astype(np.int64)
        for s, name in enumerate(names):
            out[name].append(members[edges[s]:edges[s + 1]])
    return {s: np.sort(np.concatenate(v)) for s, v in out.items()}


class SparseEvents:
    """Full-detector images of a file held sparse in memory (CSR), densified per batch."""

    def __init__(self, path, field: str, chunk: int = 64):
        from jettf.io import read_cms_quark_gluon

        index, values, lengths = [], [], []
        for part in read_cms_quark_gluon(path, field=field, chunk_size=chunk, check=False):
            n, h, w, c = part.images.shape
            flat = part.images.reshape(n, h * w, c)
            row, pixel = np.nonzero(np.any(flat != 0, axis=-1))
            index.append(pixel.astype(np.int32))
            values.append(flat[row, pixel])
            lengths.append(np.bincount(row, minlength=n))
        self.shape = (h, w, c)
        self.index, self.values = np.concatenate(index), np.concatenate(values)
        self.offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int64)

    def dense(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        entry = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths - self.offsets[rows], lengths)
        h, w, c = self.shape
        out = np.zeros((len(rows), h * w, c), np.float32)
        out[np.repeat(np.arange(len(rows)), lengths), self.index[entry]] = self.values[entry]
        return out.reshape(len(rows), h, w, c)



def view_divisor(info) -> np.ndarray:
    """Per channel input divisor of the event models: the divisor the ``cms_quark_gluon_images`` preset
    standardizes the jet model with, ``std_floor`` x the largest per-pixel std of the jet views' training split
    (the built dataset ``info``'s statistics: ``jet`` for C and C-Zero, ``gen`` for C-Gen). The event image is
    then read in the jet model's units; its whole-image std (mostly empty pixels) put hard hits at 100-1700
    standard deviations, and C trained on that reached 0.830 instead of 0.859 (benchmarks/README.md)."""
    from jettf.training.config import resolve

    std_floor = resolve(task="binary", dataset=info.name.split("-")[0]).std_floor
    std = np.asarray(info.pixel_std, np.float64)
    return std_floor * std.reshape(-1, std.shape[-1]).max(axis=0)


def _event_batches(events, rows, labels, scale, batch_size, zero_centers=None, seed=None):
    import keras

    from jettf.detector.e2e import window_mask

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.array(rows)
            self.rng = None if seed is None else np.random.default_rng(seed)
            if self.rng is not None:
                self.rng.shuffle(self.order)

        def __len__(self):
            return -(-len(self.order) // batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            x = events.dense(idx) * scale
            if zero_centers is not None:
                x *= window_mask(zero_centers[idx], events.shape)[..., None]
            return {"image": x}, labels[idx]

        def on_epoch_end(self):
            if self.rng is not None:
                self.rng.shuffle(self.order)

    return Batches()


def _best_weights():
    import keras

    class BestWeights(keras.callbacks.Callback):
        """Keep the weights of the epoch with the lowest validation loss; restore them at the end."""

        def __init__(self):
            super().__init__()
            self.best, self.weights, self.epoch = np.inf, None, -1

        def on_epoch_end(self, epoch, logs=None):
            if logs and logs.get("val_loss", np.inf) < self.best:
                self.best, self.weights, self.epoch = logs["val_loss"], self.model.get_weights(), epoch

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)

    return BestWeights()


def train_image_classifier(events, split, labels, args, divisor, zero_centers=None):
    """ResNet-15 on full-detector images (003 algorithm C), each channel divided by ``divisor``
    (:func:`view_divisor`): returns the model and its per-channel scale."""
    import keras

    import jettf.models as zoo

    keras.utils.set_random_seed(args.seed)
    scale = (1.0 / divisor).astype(np.float32)
    base = zoo.build("resnet15", 2, input_shape=events.shape)
    image = keras.Input(events.shape, name="image")
    x = keras.layers.RandomFlip("horizontal_and_vertical", seed=args.seed)(image)  # eta and phi reflections
    model = keras.Model({"image": image}, base({"image": x}), name="event_resnet15")
    model.compile(optimizer=keras.optimizers.Adam(5e-4), loss="sparse_categorical_crossentropy")
    train = _event_batches(events, split["train"], labels, scale, 32, zero_centers, seed=args.seed)
    val = _event_batches(events, split["validation"], labels, scale, 64, zero_centers)
    best = _best_weights()
    model.fit(train, validation_data=val, epochs=args.event_epochs, callbacks=[best], verbose=2)
    return model, scale, best.epoch


def fcn_scores(x_train, y_train, x_test, seed: int) -> np.ndarray:
    """003's FCN 128x2 event classifier: trained on ``x_train`` (a quarter held out for early stopping)."""
    import keras

    keras.utils.set_random_seed(seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    hold = order[: len(order) // 4]
    fit = order[len(order) // 4:]
    inputs = keras.Input((x_train.shape[1],))
    h = keras.layers.Dense(128, activation="relu")(inputs)
    h = keras.layers.Dense(128, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(patience=30, restore_best_weights=True)
    model.fit((x_train[fit] - mean) / std, y_train[fit], validation_data=((x_train[hold] - mean) / std, y_train[hold]),
              epochs=400, batch_size=32, callbacks=[stop], verbose=0)
    return model.predict((x_test - mean) / std, verbose=0)[:, 1]


def event_study(args, hdf5: Path, jet_run: Path, infos: dict, work: Path) -> dict:
    """003 Tables 6 and 7; returns {name: {figures, pred}} on the test events."""
    import keras

    from jettf.io import read_cms_quark_gluon
    from jettf.training import load_tagger

    out_dir = work / "events"
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, jets, centers = [], [], []
    for part in read_cms_quark_gluon(hdf5, chunk_size=256, check=False):
        labels.append(part.labels)
        jets.append(part.jets)
        centers.append(part.centers)
    labels, jets, centers = np.concatenate(labels), np.concatenate(jets), np.concatenate(centers)
    from tfds_builders.cms_quark_gluon_images.cms_quark_gluon_images_dataset_builder import Builder

    split = builder_split(labels, Builder.SPLIT_FRACTIONS)
    counts = {s: {CLASSES[c]: int((labels[r] == c).sum()) for c in (0, 1)} for s, r in split.items()}
    selection = infos["jet"].metadata["selection"]
    if counts != selection["split_counts"]:
        raise RuntimeError(f"the event split {counts} differs from the dataset's {selection}")
    test = split["test"]
    y_test = labels[test]
    results = {}

    def done(name):
        """The kept test scores of ``name``; image models kept before their inputs were divided by the jet
        views' divisor are stale (retrained)."""
        path = out_dir / f"{slug(name)}.npz"
        if not path.exists():
            return None
        if name.startswith("C") and "divisor" not in json.loads(path.with_suffix(".json").read_text()):
            return None
        return np.load(path)["score"]

    def keep(name, score, seconds, **extra):
        np.savez(out_dir / f"{slug(name)}.npz", score=score)
        (out_dir / f"{slug(name)}.json").write_text(json.dumps({"seconds": seconds, **extra}))

    # A and B: the jet model's q/g scores of both jets (events the jet model never trained on).
    if done("A") is None or done("B") is None:
        start = time.time()
        say("event study: jet scores of the leading and sub-leading jets (validation and test events)")
        tagger = load_tagger(jet_run)
        wanted = np.sort(np.concatenate([split["validation"], test]))
        scores = np.zeros((len(labels), 2), np.float32)
        for k, field in enumerate(("X_jets", "X_jet2")):
            row0 = 0
            for part in read_cms_quark_gluon(hdf5, field=field, chunk_size=256, check=False):
                rows = np.arange(row0, row0 + len(part))
                row0 += len(part)
                use = np.isin(rows, wanted)
                if use.any():
                    scores[rows[use], k] = tagger.predict({"image": part.images[use]}, batch_size=128, verbose=0)[:, 1]
        logit = np.log(np.clip(scores, 1e-6, 1 - 1e-6) / np.clip(1 - scores, 1e-6, 1))
        kinematics = jets.reshape(len(jets), 8)
        val = split["validation"]
        for name, x in (("A", logit), ("B", np.concatenate([logit, kinematics], axis=1))):
            score = fcn_scores(x[val], labels[val], x[test], args.seed)
            keep(name, score, time.time() - start, trained_on="validation events", n_train=int(len(val)))
        keras.backend.clear_session()
    results["A"], results["B"] = done("A"), done("B")

    # C, C-Gen, C-Zero: ResNet-15 on 280 x 360 images.
    events = None
    for name, field, zero in (("C", "X_event", False), ("C-Zero", "X_event", True), ("C-Gen", "X_event_gen", False)):
        if name not in args.event_models:
            continue
        if done(name) is not None and (name == "C-Gen" or done(f"{name} on {'C-Zero' if name == 'C' else 'C'}")
                                       is not None):
            continue
        start = time.time()
        if events is None or events[0] != field:
            say(f"event study: loading {field}")
            events = (field, SparseEvents(hdf5, field))
        images = events[1]
        say(f"event study: training {name} on {len(split['train'])} events x {args.event_epochs} epochs")
        divisor = view_divisor(infos["gen" if field == "X_event_gen" else "jet"])
        model, scale, best_epoch = train_image_classifier(images, split, labels, args, divisor,
                                                          centers if zero else None)
        train_seconds = time.time() - start

        def score_on(zeroed):
            ds = _event_batches(images, test, labels, scale, 64, centers if zeroed else None)
            return model.predict(ds, verbose=0)[:, 1]

        kept = dict(divisor=divisor.tolist())
        keep(name, score_on(zero), train_seconds, best_epoch=best_epoch, n_train=int(len(split["train"])), **kept)
        if name == "C":
            keep("C on C-Zero", score_on(True), 0.0, **kept)
        elif name == "C-Zero":
            keep("C-Zero on C", score_on(False), 0.0, **kept)
        keras.backend.clear_session()
    for name in TABLE6:
        if name.split(" on ")[0] in args.event_models:
            results[name] = done(name)
    out = {}
    for name, score in results.items():
        extra = json.loads((out_dir / f"{slug(name)}.json").read_text())
        out[name] = {"figures": figures(y_test, score, args.n_boot, args.seed), "score": score, **extra}
    return out, y_test


# --------------------------------------------------------------------------- report
def _num(value, digits: int) -> str:
    """A figure; json_safe writes inf as the string "inf" (no background passes the cut)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{value:.{digits}f}" if np.isfinite(value) else str(value)


def _fmt_ci(value, ci, digits=3):
    return f"{_num(value, digits)} [{_num(ci[0], digits)}, {_num(ci[1], digits)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/bench_cms_quark_gluon", help="working directory (resumable)")
    parser.add_argument("--n-events", type=int, default=3000, help="events per class (default 3000)")
    parser.add_argument("--pileup", type=float, default=20.0, help="pile-up <mu> (003: 18-21; default 20)")
    parser.add_argument("--epochs", type=int, default=10, help="jet-study epochs per model (003: 30)")
    parser.add_argument("--event-epochs", type=int, default=12, help="epochs of C, C-Gen, C-Zero (003: 30)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for the generation, the build and the jet rows")
    parser.add_argument("--shard-events", type=int, default=250, help="events per generation shard")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-events", action="store_true", help="jet study only")
    parser.add_argument("--rows", type=lambda s: s.split(","), default=None,
                        help="jet-study rows only, comma-separated (e.g. ECAL,HCAL for a training-size scan)")
    parser.add_argument("--event-models", type=lambda s: s.split(","), default=list(IMAGE_EVENT_MODELS),
                        help="image event classifiers to train, comma-separated (default C,C-Zero,C-Gen; A and B "
                             "always run)")
    parser.add_argument("--quick", action="store_true", help="60 events per class, 1 epoch each (a smoke run)")
    args = parser.parse_args()
    if set(args.event_models) - set(IMAGE_EVENT_MODELS):
        parser.error(f"--event-models {','.join(args.event_models)}: expected some of "
                     f"{','.join(IMAGE_EVENT_MODELS)}")
    if args.quick:
        args.n_events, args.epochs, args.event_epochs, args.n_boot = 60, 1, 1, 100
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing hints: every model here traces anew
    import jettf.data as jd
    from jettf.generate import generate_sample

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    load_start, t0 = os.getloadavg(), time.time()
    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load {load_start}")
    timings = {}

    start = time.time()
    sample_dir = work / "sample"
    files = generate_sample("cms_quark_gluon", args.n_events, sample_dir, seed=args.seed, workers=args.workers,
                            shard_jets=args.shard_events, pileup=args.pileup or None)
    hdf5 = next(f for f in files if f.suffix == ".hdf5")
    generation = json.loads((sample_dir / "generation.json").read_text())
    timings["generation"] = {"wall_this_run": time.time() - start, "cpu_seconds": sum(
        c["cpu_seconds"] for c in generation["classes"].values()), "events": {
        k: c["events"] for k, c in generation["classes"].items()}}

    start = time.time()
    data_dir = str(work / "data")
    infos = {cfg: jd.build(f"cms_quark_gluon_images/{cfg}", data_dir=data_dir, manual_dir=str(sample_dir),
                           n_jets=args.n_events, workers=args.workers) for cfg in ("jet", "gen")}
    timings["build"] = time.time() - start
    split_counts = infos["jet"].metadata["selection"]["split_counts"]
    say(f"datasets: {split_counts}")

    start = time.time()
    jets = jet_study(args, data_dir, sample_dir, work)
    timings["jet_study"] = time.time() - start
    ref = next(iter(jets.values()))["pred"]
    paired = all(np.array_equal(r["pred"]["y"], ref["y"]) and np.allclose(r["pred"]["pt"], ref["pt"])
                 for r in jets.values())
    jet_orderings = []
    for a, rel, b in JET_ORDERINGS:
        if a not in jets or b not in jets:
            continue
        d = paired_difference(ref["y"], jets[a]["pred"]["score"], jets[b]["pred"]["score"], args.n_boot, args.seed)
        jet_orderings.append({"ordering": f"{a} {rel} {b}", "difference": d, "verdict": verdict(rel, d)})

    events, event_orderings = {}, []
    if not args.skip_events and "Tracks+ECAL+HCAL" in jets:
        start = time.time()
        events, y_test = event_study(args, hdf5, Path(jets["Tracks+ECAL+HCAL"]["run_dir"]), infos, work)
        timings["event_study"] = time.time() - start
        for a, rel, b in (o for o in EVENT_ORDERINGS if o[0] in events and o[2] in events):
            d = paired_difference(y_test, events[a]["score"], events[b]["score"], args.n_boot, args.seed)
            event_orderings.append({"ordering": f"{a} {rel} {b}", "difference": d, "verdict": verdict(rel, d)})
    timings["total"] = time.time() - t0

    n_train = sum(split_counts["train"].values())
    n_test = sum(split_counts["test"].values())
    print(f"\nSample: {2 * args.n_events} events ({args.n_events} di-gluon, {args.n_events} di-quark), pile-up <mu> "
          f"{args.pileup:g}; split train {n_train} / validation {sum(split_counts['validation'].values())} / test "
          f"{n_test}; jet models {args.epochs} epochs, event models {args.event_epochs} epochs; 95% bootstrap "
          f"intervals ({args.n_boot} resamples).\n")
    print("Jet classification (003 Table 4; quark = signal):\n")
    print("| jet image | AUC [95% CI] | 1/FPR at TPR 0.7 [95% CI] | 003 AUC | 003 1/FPR | train s |")
    print("|---|---|---|---|---|---|")
    for row, _, _, auc003, fpr003 in (r for r in TABLE4 if r[0] in jets):
        f = jets[row]["figures"]
        print(f"| {row} | {_fmt_ci(f['auc'], f['auc_ci'])} | {_fmt_ci(f['inv_fpr'], f['inv_fpr_ci'], 2)} | {auc003} | "
              f"{fpr003} | {jets[row]['seconds']['wall']:.0f} |")
    print(f"\nOrderings (paired bootstrap of the AUC difference on the same {len(ref['y'])} test jets"
          f"{'' if paired else '; WARNING: the rows do not share their test jets'}):\n")
    print("| 003 ordering | AUC difference [95% CI] | here |")
    print("|---|---|---|")
    for o in jet_orderings:
        print(f"| {o['ordering']} | {_fmt_ci(o['difference']['value'], o['difference']['ci'])} | {o['verdict']} |")
    if events:
        print(f"\nEvent classification (003 Tables 6, 7; {len(y_test)} test events):\n")
        print("| algorithm | AUC [95% CI] | 1/FPR at TPR 0.7 [95% CI] | 003 AUC | 003 1/FPR |")
        print("|---|---|---|---|---|")
        for name, (label, auc003, fpr003) in ((k, v) for k, v in TABLE6.items() if k in events):
            f = events[name]["figures"]
            print(f"| {label} | {_fmt_ci(f['auc'], f['auc_ci'])} | {_fmt_ci(f['inv_fpr'], f['inv_fpr_ci'], 2)} | "
                  f"{auc003} | {fpr003} |")
        print("\n| 003 ordering | AUC difference [95% CI] | here |")
        print("|---|---|---|")
        for o in event_orderings:
            print(f"| {o['ordering']} | {_fmt_ci(o['difference']['value'], o['difference']['ci'])} | {o['verdict']} |")
    load_end = os.getloadavg()
    print(f"\nWall time: {json.dumps({k: (round(v) if isinstance(v, float) else v) for k, v in timings.items()})}; "
          f"load average at start {load_start}, at end {load_end}. Average images per class and channel: "
          f"{jets.get('Tracks+ECAL+HCAL', next(iter(jets.values())))['run_dir']}/plots/average_images.png")
    summary = {
        "settings": vars(args), "split_counts": split_counts, "timings": timings, "load": [load_start, load_end],
        "jets": {k: {"figures": v["figures"], "seconds": v["seconds"], "run_dir": v["run_dir"]}
                 for k, v in jets.items()},
        "jet_orderings": jet_orderings, "paired": paired,
        "events": {k: {kk: vv for kk, vv in v.items() if kk != "score"} for k, v in events.items()},
        "event_orderings": event_orderings,
    }
    from jettf.utils import write_json

    write_json(work / "results.json", summary)


if __name__ == "__main__":
    main()
