"""The training job: K-fold cross-validation or rounds, final model, test evaluation, report.

:func:`run` executes a resolved configuration (see
:mod:`jettf.training.config`) into a run directory. Every stage (a fold, the
final fit) is checkpointed per epoch and recorded in ``state.json`` when
finished, so ``--resume`` skips finished stages and continues the one in flight.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np

from jettf import metrics as jm
from jettf.training.accelerate import setup_accelerator
from jettf.training.loop import EpochSchedule, fit_stage
from jettf.training.report import write_report
from jettf.training.run_dir import RunDir, environment_versions

__all__ = ["TrainingData", "run", "fit_validate", "predict", "inference_ms_per_100"]

# Settings that may differ when a run directory is resumed (they do not change the result).
RESUME_IGNORED = {"data_dir", "manual_dir", "n_boot", "mixed_precision", "jit_compile", "seeds",
                  "dataset_fingerprint", "image_spec", "feature_spec", "feature_names", "class_names", "inputs",
                  "image_prep", "dataset_source", "accelerator", "versions", "seed_dirs"}

# Input sizes below which a backbone cannot run (InceptionV3 needs 75 px).
MIN_INPUT_SIDE = {"ensemble": 75}


@dataclasses.dataclass
class TrainingData:
    """A built dataset with the selection and preparation a run uses."""

    info: object
    classes: Optional[list]  # class subset in label order, or None for all
    inputs: tuple
    prep: object  # jettf.data.ImagePrep (None for particle models)
    batch_size: int
    seed: int
    flips: Optional[str]
    deterministic: bool

    @property
    def class_names(self) -> list:
        return list(self.classes or self.info.class_names)

    def dataset(self, split: str, training: bool, **kwargs):
        import jettf.data as jd

        return jd.make_dataset(
            self.info, split, batch_size=self.batch_size, inputs=self.inputs, training=training,
            flips=self.flips, classes=self.classes, prep=self.prep, seed=self.seed,
            deterministic=self.deterministic, **kwargs,
        )

    def n_examples(self, split: str) -> int:
        """Jets per pass over ``split`` after the class selection (reads only labels)."""
        labels = self.info.labels(split)
        if self.classes is None:
            return len(labels)
        return int(np.isin(labels, [self.info.class_names.index(c) for c in self.classes]).sum())


def _prepare_data(config: dict, log) -> TrainingData:
    import jettf.data as jd
    import jettf.models as zoo

    info = jd.build(config["dataset"], data_dir=config["data_dir"], manual_dir=config["manual_dir"],
                    n_jets=config["n_jets"])
    classes = [config["background"], config["signal"]] if config["task"] == "binary" else None
    if config["task"] == "multiclass" and info.n_classes < 3:
        raise ValueError(f"--task multiclass needs a dataset with 3+ classes; {info.name} has {info.class_names}")
    kind = zoo.info(config["model"]).input_kind
    inputs = ("constituents",) if kind == "constituents" else ("image",)
    if config["global_features"]:
        inputs += ("global_features",)
    prep = None
    if kind == "image":
        resize = config.get("resize")
        side = (config.get("crop") or info.image_spec.crop or info.image_spec.npix) if config["standardize"] else (
            config.get("crop") or info.image_spec.npix)
        if resize is None and side < MIN_INPUT_SIDE.get(config["model"], 0):
            resize = MIN_INPUT_SIDE[config["model"]]
        to_rgb = config["to_rgb"]
        prep = jd.image_prep(
            info, standardize=config["standardize"], crop=config.get("crop", info.image_spec.crop is not None),
            to_rgb=("colormap" if to_rgb is True else to_rgb) or None, resize=resize,
            densify=config.get("densify", "auto"),
        )
    return TrainingData(info, classes, inputs, prep, config["batch_size"], config["seed"], config["flips"],
                        config["deterministic"])


def _model_fn(config: dict, data: TrainingData, accel) -> Callable[[], keras.Model]:
    import jettf.data as jd
    import jettf.models as zoo
    from jettf.data import records

    def build() -> keras.Model:
        options = dict(config["model_options"])
        n_features = 0
        if "global_features" in data.inputs:
            n_features = len(data.info.feature_names)
            meta = data.info.metadata
            options.setdefault("global_mean", records.decode_array(meta["feature_mean"]))
            options.setdefault("global_std", records.decode_array(meta["feature_std"]))
        shape = data.prep.output_shape if data.prep is not None else None
        with accel.scope():
            model = zoo.build(config["model"], len(data.class_names), input_shape=shape,
                              n_global_features=n_features, class_names=data.class_names,
                              seed=config["seed"], **options)
            if data.prep is not None and data.prep.densify == "device":
                model = jd.wrap_model(model, data.prep)
            model.compile(
                optimizer=keras.optimizers.Adam(config["learning_rate"]),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=accel.jit_compile,
            )
        return model

    return build


def predict(model: keras.Model, dataset):
    """``(labels [N], probabilities [N, C])`` over a (deterministic) dataset, in its order."""
    labels = np.concatenate([np.asarray(y) for y in dataset.map(lambda x, y: y)])
    probs = model.predict(dataset.map(lambda x, y: x), verbose=0)
    return labels, np.asarray(probs, dtype=np.float32)


def inference_ms_per_100(model: keras.Model, dataset, repeats: int = 20) -> float:
    """Median wall time of one forward pass on 100 jets (after warm-up), in ms."""
    batch = next(iter(dataset.unbatch().batch(100).take(1)))[0]
    model.predict_on_batch(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        times.append(time.perf_counter() - start)
    n = int(next(iter(batch.values())).shape[0])
    return float(np.median(times) * 1e3 * 100 / n)


def _stage_callbacks(run_dir: RunDir, stage: str) -> list:
    log_dir = run_dir.log_dir(stage)
    log_dir.mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.CSVLogger(str(log_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(log_dir / "tensorboard"), write_graph=False),
    ]


def _run_stage(name, config, data, accel, run_dir, schedule, validation_split, log, model_fn=None):
    """Fit one stage (or skip it if done); returns ``(model or None, result dict)``."""
    done = run_dir.stage_done(name)
    if done is not None:
        log(f"[{name}] already finished, skipping")
        return None, done
    validation = data.dataset(validation_split, training=False) if validation_split else None
    model, progress = fit_stage(
        model_fn or _model_fn(config, data, accel),
        schedule,
        lambda span: data.dataset(span.split, training=True, cache=config["scheme"] == "rounds"),
        validation,
        run_dir.checkpoint_dir(name),
        callbacks=_stage_callbacks(run_dir, name),
        restore_best=validation is not None,
        log=log,
        prefix=f"[{name}] ",
    )
    result = {"history": progress["history"], "best_epoch": progress["best_epoch"]}
    if validation is not None:
        y, p = predict(model, validation)
        result["validation"] = jm.evaluate_predictions(
            y, p, data.class_names, signal_class=config.get("signal"), n_boot=0)
    return model, result


def _average_images(data: TrainingData, split: str, max_jets: int = 2000) -> dict:
    """Average raw (unstandardized) image per class over the first ``max_jets`` of ``split``."""
    import jettf.data as jd

    prep = jd.image_prep(data.info, densify="host")
    ds = jd.make_dataset(data.info, split, batch_size=256, inputs=("image",), training=False,
                         classes=data.classes, prep=prep).unbatch().take(max_jets).batch(256)
    sums = np.zeros((len(data.class_names), *prep.output_shape))
    counts = np.zeros(len(data.class_names))
    for x, y in ds:
        onehot = np.eye(len(data.class_names))[y.numpy()]
        sums += np.einsum("nc,nhwk->chwk", onehot, x["image"].numpy())
        counts += onehot.sum(axis=0)
    return {c: sums[i] / max(counts[i], 1) for i, c in enumerate(data.class_names) if counts[i]}


def _setup(config: dict):
    """Seed everything, make TensorFlow ops deterministic if asked, and set up the accelerator."""
    keras.utils.set_random_seed(config["seed"])
    if config["deterministic"] and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return setup_accelerator(config["mixed_precision"], config["jit_compile"])


def fit_validate(config: dict, run_dir, log: Callable[[str], None] = print, *, epochs: Optional[int] = None,
                 initial_model=None) -> dict:
    """Train ``config`` once and score it on held-out jets: one tuning trial (see ``tuning/``).

    No K-fold, no final refit, no test set, no report. Training uses ``train`` and
    validation the dataset's ``validation`` split, or, for datasets without one,
    fold 0 of ``config["folds"]``-fold CV of ``train``. The schedule is 002's rounds
    for ``scheme="rounds"`` (rounds need a validation split), else
    ``config["epochs"]`` epochs with early stopping after ``config["patience"]``
    epochs without a better validation loss (no early stopping without the key).
    ``epochs`` overrides both with a plain number of epochs (Hyperband's budget);
    ``initial_model`` (a ``.keras`` path) starts from that model instead of a
    fresh one (Hyperband's warm start). The returned model is the epoch with the
    lowest validation loss.

    ``run_dir`` gets ``config.json``, ``state.json`` and ``checkpoints/fit``, so an
    interrupted call resumes at its last epoch and a finished one returns its
    recorded result at once.

    Returns:
        ``{"validation": evaluate_predictions(...) on the held-out jets (n_boot=0),
        "val_loss": lowest validation loss, "history", "best_epoch", "epochs": epochs trained,
        "params": model parameters, "train_split", "validation_split"}``.
    """
    import jettf.data as jd

    run_dir = RunDir(run_dir)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    accel = _setup(config)
    data = _prepare_data(config, log)
    if "validation" in data.info.splits:
        train_split, validation_split = "train", "validation"
    else:
        fold = jd.kfold_splits(data.info, k=config["folds"], seed=config["seed"])[0]
        train_split, validation_split = fold.train, fold.validation
    n_train = data.n_examples(train_split)
    if epochs is not None:
        schedule = EpochSchedule(epochs, train_split, n_train)
    elif config["scheme"] == "rounds":
        if train_split != "train":
            raise ValueError(f"{data.info.name} has no validation split, which rounds need; use scheme 'kfold'")
        schedule = jd.RoundSchedule(n_train, round_size=config["round_size"], patience=config["patience"],
                                    sweeps=config["sweeps"], max_epochs_per_round=config["epochs"])
    else:
        schedule = EpochSchedule(config["epochs"], train_split, n_train, patience=config.get("patience"))
    resolved = {**config, "dataset_fingerprint": data.info.fingerprint(), "class_names": data.class_names,
                "inputs": list(data.inputs), "train_split": train_split, "validation_split": validation_split,
                "schedule_epochs": epochs, "initial_model": None if initial_model is None else str(initial_model)}
    resolved = jm.json_safe(resolved)
    if run_dir.exists():
        previous = run_dir.read_config()
        changed = sorted(k for k in resolved if previous.get(k) != resolved[k])
        if changed:
            raise ValueError(f"{run_dir.path}: holds a fit with different {changed}; use a new directory")
    run_dir.write_config(resolved)
    model_fn = None if initial_model is None else (lambda: keras.models.load_model(initial_model))
    model, result = _run_stage("fit", config, data, accel, run_dir, schedule, validation_split, log, model_fn)
    if model is not None:
        val_losses = result["history"].get("val_loss", [])
        result.update(
            val_loss=float(min(val_losses)) if val_losses else float("nan"),
            epochs=len(result["history"].get("loss", [])),
            params=int(model.count_params()),
            train_split=train_split,
            validation_split=validation_split,
        )
        result = jm.json_safe(result)
        run_dir.mark_stage_done("fit", result)
    return result


def run(config: dict, run_dir, log: Callable[[str], None] = print) -> dict:
    """Train and evaluate one configuration into ``run_dir``; returns metrics.json content.

    An existing run directory with the same configuration is resumed.
    """
    import jettf.data as jd

    run_dir = RunDir(run_dir)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    accel = _setup(config)
    data = _prepare_data(config, log)
    resolved = {
        **config,
        "dataset_fingerprint": data.info.fingerprint(),
        "image_spec": data.info.image_spec.to_dict() if data.prep is not None else None,
        "feature_spec": data.info.feature_spec.to_dict() if data.info.feature_spec is not None else None,
        "feature_names": list(data.info.feature_names) if "global_features" in data.inputs else [],
        "class_names": data.class_names,
        "inputs": list(data.inputs),
        "image_prep": data.prep.describe() if data.prep is not None else None,
        "dataset_source": data.info.source,
        "accelerator": accel.describe(),
        "versions": environment_versions(),
    }
    if run_dir.exists():
        previous = run_dir.read_config()
        changed = sorted(k for k in set(config) | set(previous)
                         if k not in RESUME_IGNORED and previous.get(k) != config.get(k))
        if changed:
            raise ValueError(f"{run_dir.path}: holds a run with different {changed}; use a new --out directory")
    run_dir.write_config(resolved)
    if data.prep is not None and data.prep.standardize:
        np.savez(run_dir.preprocessing_path, pixel_mean=data.prep.mean, pixel_std=data.prep.std)
    log(data.info.summary())

    fold_results, histories = [], {}
    if config["scheme"] == "kfold":
        for i, fold in enumerate(jd.kfold_splits(data.info, k=config["folds"], seed=config["seed"])):
            name = f"fold_{i}"
            schedule = EpochSchedule(config["epochs"], fold.train, data.n_examples(fold.train))
            _, result = _run_stage(name, config, data, accel, run_dir, schedule, fold.validation, log)
            run_dir.mark_stage_done(name, result)
            fold_results.append(result["validation"])
            histories[name] = result["history"]
        schedule = EpochSchedule(config["epochs"], "train", data.n_examples("train"))
        validation_split = None
    else:
        if "validation" not in data.info.splits:
            raise ValueError(f"{data.info.name} has no validation split, which rounds need; use --scheme kfold")
        schedule = jd.RoundSchedule(data.n_examples("train"), round_size=config["round_size"],
                                    patience=config["patience"], sweeps=config["sweeps"],
                                    max_epochs_per_round=config["epochs"])
        validation_split = "validation"
    model, result = _run_stage("final", config, data, accel, run_dir, schedule, validation_split, log)
    if model is None:
        model = keras.models.load_model(run_dir.model_path)
    else:
        from jettf.utils import atomic_path

        with atomic_path(run_dir.model_path) as tmp:
            model.save(tmp)
        run_dir.mark_stage_done("final", result)
    histories["final"] = result["history"]

    test = data.dataset("test", training=False)
    y, probs = predict(model, test)
    test_metrics = jm.evaluate_predictions(y, probs, data.class_names, signal_class=config.get("signal"),
                                           n_boot=config["n_boot"], seed=config["seed"])
    speeds = [v for v in result["history"].get("images_per_s", [])[1:]] or result["history"].get("images_per_s", [0])
    metrics = jm.json_safe({
        "task": config["task"],
        "model": config["model"],
        "dataset": config["dataset"],
        "classes": data.class_names,
        "folds": fold_results,
        "folds_summary": jm.mean_std_over_folds(
            [{k: f[k] for k in ("accuracy", "auc", "auc_mean") if k in f} for f in fold_results]
        ) if len(fold_results) > 1 else {},
        "test": test_metrics,
        "params": int(model.count_params()),
        "inference_ms_per_100_jets": inference_ms_per_100(model, test),
        "train_images_per_s": float(np.mean(speeds)),
    })
    run_dir.write_metrics(metrics)
    write_report(
        run_dir.path, metrics, y_true=y, probs=probs, histories=histories,
        average_images=_average_images(data, "test") if data.prep is not None else None,
        image_extent=data.info.image_spec.extent if data.prep is not None else None,
        source=next((line.strip() for line in data.info.summary().splitlines() if "source:" in line), ""),
    )
    log(f"wrote {run_dir.metrics_path} and {run_dir.report_path}")
    return metrics


def run_seeds(config: dict, run_dir, log: Callable[[str], None] = print) -> dict:
    """Run ``config["seeds"]`` seeds; with more than one, aggregate them (000's stability analysis).

    Each seed trains in ``run_dir/seed_<s>``; ``run_dir/metrics.json`` then holds
    every seed's test metrics under ``seeds`` and their mean and standard
    deviation under ``test``. Compare two such runs with
    ``python -m jettf.evaluate --compare RUN_A RUN_B`` (Welch's t-test).
    """
    n_seeds = int(config.get("seeds") or 1)
    if n_seeds == 1:
        return run(config, run_dir, log)
    run_dir = RunDir(run_dir)
    per_seed = []
    for seed in range(config["seed"], config["seed"] + n_seeds):
        log(f"=== seed {seed} ===")
        per_seed.append(run({**config, "seed": seed, "seeds": 1}, run_dir.path / f"seed_{seed}", log))
    summary_keys = ("accuracy", "auc", "auc_mean")
    metrics = jm.json_safe({
        **{k: per_seed[0][k] for k in ("task", "model", "dataset", "classes", "params")},
        "seeds": [{"seed": config["seed"] + i, **{k: m["test"][k] for k in summary_keys if k in m["test"]}}
                  for i, m in enumerate(per_seed)],
        "test": jm.mean_std_over_folds([{k: m["test"][k] for k in summary_keys if k in m["test"]}
                                        for m in per_seed]),
    })
    run_dir.write_config({**config, "seed_dirs": [f"seed_{s['seed']}" for s in metrics["seeds"]]})
    run_dir.write_metrics(metrics)
    return metrics
