"""The training job: K-fold cross-validation or rounds, final model, test evaluation, report.

:func:`run` executes a :class:`~jettf.training.config.TrainConfig` into a run directory. Every
stage (a fold, the final fit) is checkpointed per epoch and recorded in ``state.json`` when
finished, so ``--resume`` skips finished stages and continues the one in flight, exactly.

The model saved as ``model.keras`` is the *tagger*: it takes the rendered image (physical units)
and holds its own preparation (:class:`jettf.images.ImagePreparation`) and training-time flips.
What the training step is fed depends only on where sparse images are densified
(:func:`jettf.data.densify_on_host`): in tf.data (the tagger trains as it is) or on the device
(the tagger behind one more ``ImagePreparation`` that only densifies). Either way the maths is
the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import time
from typing import Callable, Optional

import keras
import numpy as np

from jettf import metrics as jm
from jettf.training.accelerate import setup_accelerator
from jettf.training.config import TrainConfig
from jettf.training.loop import EpochSchedule, fit_stage
from jettf.training.report import write_report
from jettf.training.run_dir import RunDir, environment_versions

__all__ = ["TrainingData", "prepare_data", "run", "run_seeds", "fit_validate", "predict", "inference_ms_per_100",
           "quiet_retracing", "build_preparation", "build_tagger", "second_images", "training_model", "tagger_of",
           "stage_seed", "class_mean_images"]

# Input sizes below which a backbone cannot run (InceptionV3 needs 75 px).
MIN_INPUT_SIDE = {"ensemble": 75}


@dataclasses.dataclass
class TrainingData:
    """A built dataset with the selection and input placement a run uses."""

    info: object  # jettf.data.JetDatasetInfo
    config: TrainConfig
    inputs: tuple
    densify_in_pipeline: bool
    reweighting: object = None  # jettf.training.reweight.Reweighting, with --reweight

    @property
    def classes(self) -> Optional[list]:
        return self.config.classes

    @property
    def class_names(self) -> list:
        return list(self.classes or self.info.class_names)

    @property
    def image_inputs(self) -> tuple:
        """The images the model reads: ``"image"`` and any second image (004's ``hcal``)."""
        return tuple(name for name in self.inputs if name == "image" or name in self.info.extra_image_specs)

    def dataset(self, split: str, training: bool, seed: Optional[int] = None, weighted: bool = True, **kwargs):
        """Batches of ``split`` for the model; with --reweight or stored per-candidate weights (and ``weighted``)
        they carry sample weights."""
        import jettf.data as jd

        weights = self.reweighting.weights_tf if self.reweighting is not None and weighted else None
        return jd.make_dataset(
            self.info, split, batch_size=self.config.batch_size, inputs=self.inputs, densify=self.densify_in_pipeline,
            training=training, classes=self.classes, seed=self.config.seed if seed is None else seed,
            deterministic=self.config.deterministic, sample_weight=weights,
            record_weights=weighted and self.info.layout.has_weight, **kwargs,
        )

    def evaluation_weights(self, split: str, labels: np.ndarray, jet: np.ndarray) -> Optional[np.ndarray]:
        """Per-jet weights of ``split`` for the weighted figures: the stored weights times --reweight's (None:
        unweighted)."""
        import jettf.data as jd

        weights = None
        if self.info.layout.has_weight:
            ds = jd.make_dataset(self.info, split, batch_size=4096, inputs=("jet",), training=False,
                                 classes=self.classes, record_weights=True)
            weights = np.concatenate([w for _, _, w in ds.as_numpy_iterator()]).astype(np.float64)
        if self.reweighting is not None:
            extra = self.reweighting.weights(labels, jet)
            weights = extra if weights is None else weights * extra
        return weights

    def jets(self, split: str) -> tuple:
        """``(labels [N], jet [N, 4])`` of ``split`` in record order, after the class selection."""
        import jettf.data as jd

        ds = jd.make_dataset(self.info, split, batch_size=4096, inputs=("jet",), training=False, classes=self.classes)
        parts = list(ds.as_numpy_iterator())
        return np.concatenate([y for _, y in parts]), np.concatenate([x["jet"] for x, _ in parts])

    def n_examples(self, split: str) -> int:
        """Jets per pass over ``split`` after the class selection (reads only labels)."""
        import jettf.data as jd

        return jd.num_examples(self.info, split, self.classes)


def prepare_data(config: TrainConfig, info) -> TrainingData:
    """The run's view of a built dataset: class selection, model inputs, densify placement."""
    import jettf.data as jd
    import jettf.models as zoo

    if config.task == "multiclass" and info.n_classes < 3:
        raise ValueError(f"--task multiclass needs a dataset with 3+ classes; {info.name} has {info.class_names}")
    for role in ("signal", "background"):
        name = getattr(config, role)
        if config.task == "binary" and name not in info.class_names:
            raise ValueError(f"--{role} {name!r} is not a class of {info.name}: {info.class_names}")
    kind = zoo.info(config.model).input_kind
    inputs = {"constituents": ("constituents",), "image": ("image",), "features": ()}[kind]
    if kind == "features" and not config.global_features:
        raise ValueError(f"--model {config.model} reads only the global features; add --global-features "
                         f"({info.name}'s: {', '.join(info.feature_names) or 'none'})")
    extra = second_images(config, info)
    inputs += extra
    if kind == "image" and info.extra_image_specs and not extra:
        logging.getLogger("jettf.train").warning(
            "%s reads one image: %s's second image(s) %s are not used (calo_cnn reads them all)", config.model,
            info.name, sorted(info.extra_image_specs))
    if config.global_features:
        inputs += ("global_features",)
    on_host = {"auto": jd.densify_on_host(), "host": True, "device": False}[config.densify]
    return TrainingData(info, config, inputs, on_host and kind == "image")


def second_images(config: TrainConfig, info) -> tuple:
    """The dataset's second images the model reads (004's HCAL beside the ECAL image): all of them for image
    models that take ``extra_images`` (``calo_cnn``), none otherwise."""
    import jettf.models as zoo

    spec = zoo.info(config.model)
    if spec.input_kind != "image" or "extra_images" not in inspect.signature(spec.builder).parameters:
        return ()
    return tuple(info.extra_image_specs)


def _extra_preparations(config: TrainConfig, data_info, names) -> dict:
    """``{name: ImagePreparation}`` of the second images: densify and, with --standardize, their own training-split
    per-pixel statistics (no crop, resize or colormap: those are options of the main image)."""
    from jettf.images import ImagePreparation

    preps = {}
    for name in names:
        mean, std = data_info.extra_image_statistics(name) if config.standardize else (None, None)
        preps[name] = ImagePreparation(data_info.extra_image_specs[name], standardize=config.standardize,
                                       pixel_mean=mean, pixel_std=std, std_floor=config.std_floor,
                                       name=f"{name}_preparation")
    return preps


def _reweighting(config: TrainConfig, data: TrainingData, run_dir: RunDir):
    """The run's sample weights: fitted on the training split once, then read back (``reweight.json``)."""
    from jettf.training.reweight import Reweighting, fit_reweighting
    from jettf.utils import read_json, write_json

    if config.reweight is None:
        return None
    path = run_dir.path / "reweight.json"
    if path.exists():
        return Reweighting.from_dict(read_json(path))
    labels, jet = data.jets("train")
    signal = 1 if config.task == "binary" else None
    reweighting = fit_reweighting(config.reweight, labels, jet, len(data.class_names), signal)
    write_json(path, reweighting.to_dict())
    return reweighting


def build_preparation(config: TrainConfig, info):
    """The tagger's :class:`jettf.images.ImagePreparation` for this run's settings and dataset (None for
    particle models)."""
    import jettf.models as zoo
    from jettf.images import ImagePreparation

    if zoo.info(config.model).input_kind != "image":
        return None
    # Every TrainConfig field named like an ImagePreparation option is that option (one definition each).
    options = inspect.signature(ImagePreparation.__init__).parameters
    settings = {name: value for name, value in config.to_dict().items() if name in options}
    prep = ImagePreparation.from_dataset(info, **settings)
    if config.resize is None and prep.output_side < MIN_INPUT_SIDE.get(config.model, 0):
        prep = ImagePreparation.from_dataset(info, **{**settings, "resize": MIN_INPUT_SIDE[config.model]})
    return prep


def build_tagger(config: TrainConfig, info, class_names: list) -> keras.Model:
    """The model ``model.keras`` holds: preparation + flips + architecture (uncompiled)."""
    import jettf.models as zoo
    from jettf.data import records

    options = dict(config.model_options)
    n_features = 0
    if config.global_features:
        n_features = len(info.feature_names)
        options.setdefault("global_mean", records.decode_array(info.metadata["feature_mean"]))
        options.setdefault("global_std", records.decode_array(info.metadata["feature_std"]))
        options.setdefault("feature_names", info.feature_names)
    prep = build_preparation(config, info)
    if prep is not None:
        options.update(preparation=prep, flips=None if config.flips == "none" else config.flips)
    extra = second_images(config, info)
    if extra:
        preps = _extra_preparations(config, info, extra)
        options.update(extra_preparations=preps,
                       extra_images={name: tuple(p.output_image_shape) for name, p in preps.items()})
    if info.metadata.get("constituents_relative") and zoo.info(config.model).input_kind == "constituents":
        options.setdefault("center", "origin")  # cells at angles from the lepton, 004 section 4.6
        if config.model == "pfn":
            options.setdefault("particle_features", "linear")  # 004 App. A.1.2: the cells' standardized values
    return zoo.build(config.model, len(class_names), n_global_features=n_features, class_names=class_names,
                     seed=config.seed, **options)


def adapt_particle_standardization(tagger: keras.Model, data: TrainingData) -> None:
    """A ``pfn`` with ``particle_features="linear"`` standardizes its per-particle inputs with the mean and std
    of the training split's real particles (one pass over its constituents); other models are left alone."""
    import jettf.models as zoo

    try:
        layer = zoo.find_layer(tagger, zoo.PARTICLE_NORM_NAME)
    except ValueError:
        return
    if getattr(layer, "input_mean", None) is None:  # not fixed by particle_mean / particle_std
        batches = data.dataset("train", training=False, weighted=False).as_numpy_iterator()
        zoo.adapt_normalization(tagger, constituents=(x["constituents"] for x, *_ in batches))


def training_model(tagger: keras.Model, data: TrainingData) -> keras.Model:
    """What the training step runs: the tagger, or (densify on the device) the tagger behind a densify layer."""
    from jettf.images import ImagePreparation

    if "image" not in data.inputs or data.densify_in_pipeline:
        return tagger
    info = data.info
    inputs, feeds = {}, {}
    for name in data.image_inputs:
        spec = info.image_spec if name == "image" else info.extra_image_specs[name]
        length = info.max_pixels if name == "image" else info.extra_max_pixels(name)
        sparse = {"image_index": keras.Input((length,), dtype="int32", name=f"{name}_index"),
                  "image_values": keras.Input((length, spec.n_channels), dtype="float32", name=f"{name}_values")}
        inputs.update({f"{name}_{part}": sparse[f"image_{part}"] for part in ("index", "values")})
        feeds[name] = ImagePreparation(spec, name="densify" if name == "image" else f"densify_{name}")(sparse)
    for tensor in tagger.inputs:
        name = tensor.name.split(":")[0]
        if name not in feeds:
            inputs[name] = feeds[name] = keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name)
    return keras.Model(inputs, tagger(feeds), name=f"{tagger.name}_on_sparse")


def tagger_of(model: keras.Model) -> keras.Model:
    """The tagger inside a training model (the model itself unless it densifies sparse inputs)."""
    if "image_index" not in {t.name.split(":")[0] for t in model.inputs}:
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        raise ValueError(f"model {model.name!r}: expected one tagger behind the densify layer, found {len(inner)}")
    return inner[0]


def _model_fn(config: TrainConfig, data: TrainingData, accel) -> Callable[[], keras.Model]:
    def build() -> keras.Model:
        with accel.scope():
            tagger = build_tagger(config, data.info, data.class_names)
            adapt_particle_standardization(tagger, data)
            model = training_model(tagger, data)
            model.compile(
                optimizer=keras.optimizers.Adam(config.learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                jit_compile=accel.jit_compile,
            )
        return model

    return build


def predict(model: keras.Model, dataset):
    """``(labels [N], probabilities [N, C])`` over a (deterministic) dataset, in its order."""
    import tensorflow as tf

    plain = tf.autograph.experimental.do_not_convert
    labels = np.concatenate([np.asarray(y) for y in dataset.map(plain(lambda *batch: batch[1]))])
    with quiet_retracing():  # each split's last, smaller batch traces once more: expected, not a problem
        probs = model.predict(dataset.map(plain(lambda *batch: batch[0])), verbose=0)
    return labels, np.asarray(probs, dtype=np.float32)


class _RetracingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def quiet_retracing():
    """Hide TensorFlow's retracing hint: predicting on several splits (their sizes differ), or fitting several
    models in one process, traces again by design, and the hint's advice does not apply."""
    logger, quiet = logging.getLogger("tensorflow"), _RetracingFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def inference_ms_per_100(model: keras.Model, dataset, repeats: int = 20) -> float:
    """Median wall time of one forward pass on 100 jets (after warm-up), in ms."""
    batch = next(iter(dataset.unbatch().batch(100).take(1)))[0]
    with quiet_retracing():
        model.predict_on_batch(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        times.append(time.perf_counter() - start)
    n = int(next(iter(batch.values())).shape[0])
    return float(np.median(times) * 1e3 * 100 / n)


def stage_seed(seed: int, stage: str) -> int:
    """The seed of one stage (fold, final fit) of a run."""
    return int(np.random.SeedSequence([int(seed), *stage.encode()]).generate_state(1)[0] & 0x7FFFFFFF)


def _stage_callbacks(run_dir: RunDir, stage: str) -> list:
    log_dir = run_dir.log_dir(stage)
    log_dir.mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.CSVLogger(str(log_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(log_dir / "tensorboard"), write_graph=False),
    ]


def _run_stage(name, config: TrainConfig, data, accel, run_dir, schedule, validation_split, log, model_fn=None):
    """Fit one stage (or skip it if done); returns ``(training model or None, result dict)``."""
    done = run_dir.stage_done(name)
    if done is not None:
        log(f"[{name}] already finished, skipping")
        return None, done
    validation = data.dataset(validation_split, training=False) if validation_split else None
    with accel.scope():  # a model resumed from a checkpoint is loaded onto the devices too
        model, progress = fit_stage(
            model_fn or _model_fn(config, data, accel),
            schedule,
            lambda span, seed: data.dataset(span.split, training=True, seed=seed),
            validation,
            run_dir.checkpoint_dir(name),
            seed=stage_seed(config.seed, name),
            callbacks=_stage_callbacks(run_dir, name),
            restore_best=validation is not None,
            log=log,
            prefix=f"[{name}] ",
        )
    result = {"history": progress["history"], "best_epoch": progress["best_epoch"]}
    if validation is not None:
        y, p = predict(model, validation)
        result["validation"] = jm.evaluate_predictions(y, p, data.class_names, signal_class=config.signal, n_boot=0)
    return model, result


def class_mean_images(data: TrainingData, split: str, max_jets: int = 2000, image: str = "image") -> dict:
    """``{class: mean image [npix, npix, C]}`` of the rendered (physical) images (or of the second image
    ``image``), over the first ``max_jets`` of ``split`` (streamed from the sparse records: no dense batch is ever
    held)."""
    import jettf.data as jd
    from jettf.data.records import pixel_moments

    spec = data.info.image_spec if image == "image" else data.info.extra_image_specs[image]
    ds = jd.make_dataset(data.info, split, batch_size=512, inputs=(image,), training=False, classes=data.classes)
    sums = np.zeros((len(data.class_names), spec.npix * spec.npix, spec.n_channels))
    counts = np.zeros(len(data.class_names))
    for x, y in ds.unbatch().take(max_jets).batch(512).as_numpy_iterator():
        for c in np.unique(y):
            rows = y == c
            sums[c] += pixel_moments(x[f"{image}_index"][rows], x[f"{image}_values"][rows], spec.npix)[0]
            counts[c] += rows.sum()
    return {name: (sums[i] / counts[i]).reshape(spec.shape) for i, name in enumerate(data.class_names) if counts[i]}


def _setup(config: TrainConfig, run_dir: RunDir):
    """Set up the accelerator (first: CPU devices must be configured before the backend's runtime starts), seed
    everything, make TensorFlow ops deterministic if asked."""
    accel = setup_accelerator(config.mixed_precision, config.jit_compile, config.devices)
    if run_dir.exists():  # --devices left to detection: a resumed run must find as many devices as it started with
        before = (run_dir.read_config().get("resolved") or {}).get("accelerator", {}).get("devices")
        if before is not None and before != accel.devices:
            raise ValueError(f"{run_dir.path}: was trained on {before} device(s), this machine gives {accel.devices}; "
                             f"resume it where {before} are visible, or start a new --out directory")
    keras.utils.set_random_seed(config.seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return accel


def _build_dataset(config: TrainConfig):
    """Training builds its dataset when it is not on disk (loading, evaluating, explaining never do)."""
    import jettf.data as jd

    return jd.build(config.dataset, data_dir=config.data_dir, manual_dir=config.manual_dir, n_jets=config.n_jets)


def _resolved(config: TrainConfig, data: TrainingData, accel) -> dict:
    """What config.json records beside the settings: the data and model the run used, and the environment."""
    info = data.info
    prep = build_preparation(config, info)
    return jm.json_safe({
        "dataset": info.name,
        "dataset_fingerprint": info.fingerprint(),
        "dataset_source": info.source,
        "class_names": data.class_names,
        "inputs": list(data.inputs),
        "feature_names": list(info.feature_names) if config.global_features else [],
        "feature_spec": info.feature_spec.to_dict() if config.global_features else None,
        "image_spec": info.image_spec.to_dict() if "image" in data.inputs else None,
        "preparation": None if prep is None else prep.describe(),
        "images_as_read": bool(info.metadata.get("images_as_read")),
        "densify": ("host" if data.densify_in_pipeline else "device") if "image" in data.inputs else None,
        "accelerator": accel.describe(),
        "versions": environment_versions(),
    })


def _check_resumable(run_dir: RunDir, config: TrainConfig) -> None:
    if not run_dir.exists():
        return
    previous = run_dir.read_train_config()
    changed = config.changed_for_resume(previous)
    if changed:
        raise ValueError(f"{run_dir.path}: holds a run with different {changed}; use a new --out directory "
                         f"(or --resume {run_dir.path} to continue it as it was)")


def fit_validate(config: TrainConfig, run_dir, log: Callable[[str], None] = print, *, epochs: Optional[int] = None,
                 initial_model=None) -> dict:
    """Train ``config`` once and score it on held-out jets: one tuning trial (see ``tuning/``).

    No K-fold, no final refit, no test set, no report. Training uses ``train`` and
    validation the dataset's ``validation`` split, or, for datasets without one,
    fold 0 of ``config.folds``-fold CV of ``train``. The schedule is 002's rounds
    for ``scheme="rounds"`` (rounds need a validation split), else
    ``config.epochs`` epochs with early stopping after ``config.patience``
    epochs without a better validation loss (none without patience).
    ``epochs`` overrides both with a plain number of epochs (Hyperband's budget);
    ``initial_model`` (a ``.keras`` path) starts from that model instead of a
    fresh one (Hyperband's warm start). The returned model is the epoch with the
    lowest validation loss.

    ``run_dir`` gets ``config.json``, ``state.json`` and ``checkpoints/fit``, so an
    interrupted call resumes at its last epoch, exactly, and a finished one returns its
    recorded result at once.

    Returns:
        ``{"validation": evaluate_predictions(...) on the held-out jets (n_boot=0),
        "val_loss": lowest validation loss, "history", "best_epoch", "epochs": epochs trained,
        "params": model parameters, "train_split", "validation_split"}``.
    """
    import jettf.data as jd

    run_dir = RunDir(run_dir)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    accel = _setup(config, run_dir)
    data = prepare_data(config, jd.load_info(jd.full_name(config.dataset, config.n_jets), config.data_dir))
    data.reweighting = _reweighting(config, data, run_dir)
    if "validation" in data.info.splits:
        train_split, validation_split = "train", "validation"
    else:
        fold = jd.kfold_splits(data.info, k=config.folds, seed=config.seed)[0]
        train_split, validation_split = fold.train, fold.validation
    n_train = data.n_examples(train_split)
    if epochs is not None:
        schedule = EpochSchedule(epochs, train_split, n_train)
    elif config.scheme == "rounds":
        if train_split != "train":
            raise ValueError(f"{data.info.name} has no validation split, which rounds need; use scheme 'kfold'")
        schedule = jd.RoundSchedule(n_train, round_size=config.round_size, patience=config.patience,
                                    sweeps=config.sweeps, max_epochs_per_round=config.epochs)
    else:
        schedule = EpochSchedule(config.epochs, train_split, n_train, patience=config.patience)
    _check_resumable(run_dir, config)
    extra = {"train_split": train_split, "validation_split": validation_split, "schedule_epochs": epochs,
             "initial_model": None if initial_model is None else str(initial_model)}
    if run_dir.exists() and {k: run_dir.read_config()["resolved"].get(k) for k in extra} != jm.json_safe(extra):
        raise ValueError(f"{run_dir.path}: holds a fit with a different schedule or start; use a new directory")
    run_dir.write_config(config, {**_resolved(config, data, accel), **extra})
    model_fn = None if initial_model is None else (lambda: keras.models.load_model(initial_model))
    model, result = _run_stage("fit", config, data, accel, run_dir, schedule, validation_split, log, model_fn)
    if model is not None:
        val_losses = result["history"].get("val_loss", [])
        import jettf.models as zoo

        result.update(
            val_loss=float(min(val_losses)) if val_losses else float("nan"),
            epochs=len(result["history"].get("loss", [])),
            params=zoo.count_params(tagger_of(model)),
            train_split=train_split,
            validation_split=validation_split,
        )
        result = jm.json_safe(result)
        run_dir.mark_stage_done("fit", result)
    return result


def run(config: TrainConfig, run_dir, log: Callable[[str], None] = print) -> dict:
    """Train and evaluate one configuration into ``run_dir``; returns metrics.json content.

    An existing run directory with the same configuration is resumed.
    """
    import jettf.data as jd
    import jettf.models as zoo

    run_dir = RunDir(run_dir)
    _check_resumable(run_dir, config)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    accel = _setup(config, run_dir)
    data = prepare_data(config, _build_dataset(config))
    data.reweighting = _reweighting(config, data, run_dir)
    run_dir.write_config(config, _resolved(config, data, accel))
    log(data.info.summary())

    fold_results, histories = [], {}
    if config.scheme == "kfold":
        for i, fold in enumerate(jd.kfold_splits(data.info, k=config.folds, seed=config.seed)):
            name = f"fold_{i}"
            schedule = EpochSchedule(config.epochs, fold.train, data.n_examples(fold.train))
            _, result = _run_stage(name, config, data, accel, run_dir, schedule, fold.validation, log)
            run_dir.mark_stage_done(name, result)
            fold_results.append(result["validation"])
            histories[name] = result["history"]
        schedule = EpochSchedule(config.epochs, "train", data.n_examples("train"))
        validation_split = None
    else:
        if "validation" not in data.info.splits:
            raise ValueError(f"{data.info.name} has no validation split, which rounds need; use --scheme kfold")
        schedule = jd.RoundSchedule(data.n_examples("train"), round_size=config.round_size,
                                    patience=config.patience, sweeps=config.sweeps,
                                    max_epochs_per_round=config.epochs)
        validation_split = "validation"
    model, result = _run_stage("final", config, data, accel, run_dir, schedule, validation_split, log)
    if model is None:
        tagger = keras.models.load_model(run_dir.model_path)
    else:
        from jettf.utils import atomic_path

        tagger = tagger_of(model)
        with atomic_path(run_dir.model_path) as tmp:
            tagger.save(tmp)
        run_dir.mark_stage_done("final", result)
    histories["final"] = result["history"]

    test = data.dataset("test", training=False, weighted=False)
    y, probs = predict(model or training_model(tagger, data), test)
    labels, jet = data.jets("test")
    weights = data.evaluation_weights("test", labels, jet)
    test_metrics = jm.evaluate_predictions(y, probs, data.class_names, signal_class=config.signal,
                                           n_boot=config.n_boot, seed=config.seed, sample_weight=weights)
    _write_predictions(run_dir, y, probs, jet, weights, data.class_names)
    if config.task == "binary" and np.any(jet[:, 3] > 0):  # muon candidates carry no mass: nothing to sculpt
        test_metrics["mass_sculpting"] = jm.json_safe(jm.mass_sculpting(y, probs[:, 1], jet[:, 3]))
    speeds = [v for v in result["history"].get("images_per_s", [])[1:]] or result["history"].get("images_per_s", [0])
    metrics = jm.json_safe({
        "task": config.task,
        "model": config.model,
        "global_features": bool(config.global_features),
        "sample_weights": " x ".join(
            (["the dataset's stored per-candidate weights"] if data.info.layout.has_weight else [])
            + ([f"--reweight {config.reweight}"] if config.reweight else [])) or None,
        "dataset": data.info.name,
        "classes": data.class_names,
        "folds": fold_results,
        "folds_summary": jm.mean_std_over_folds(
            [{k: f[k] for k in ("accuracy", "auc", "auc_mean") if k in f} for f in fold_results]
        ) if len(fold_results) > 1 else {},
        "test": test_metrics,
        "params": zoo.count_params(tagger),
        "inference_ms_per_100_jets": inference_ms_per_100(model or training_model(tagger, data), test),
        "train_images_per_s": float(np.mean(speeds)),
    })
    run_dir.write_metrics(metrics)
    spec = data.info.image_spec
    write_report(
        run_dir.path, metrics, y_true=y, probs=probs, histories=histories,
        average_images=class_mean_images(data, "test") if "image" in data.inputs else None,
        image_extent=spec.extent if "image" in data.inputs else None,
        channel_names=list(spec.channels), channel_unit=spec.channel_units(),
        source=data.info.source,
        second_images={name: {"means": class_mean_images(data, "test", image=name), "extent": second.extent,
                              "channel_names": list(second.channels), "units": second.channel_units()}
                       for name, second in data.info.extra_image_specs.items() if name in data.inputs},
    )
    log(f"wrote {run_dir.metrics_path} and {run_dir.report_path}")
    return metrics


def _write_predictions(run_dir: RunDir, y, probs, jet, weights, class_names) -> None:
    """The test predictions (``RunDir.predictions_path``), for comparisons that pair two runs' jets."""
    from jettf.utils import atomic_path

    arrays = dict(y=np.asarray(y), probs=np.asarray(probs), jet=np.asarray(jet), classes=np.asarray(class_names))
    if weights is not None:
        arrays["weight"] = np.asarray(weights)
    with atomic_path(run_dir.predictions_path) as tmp:
        np.savez(tmp, **arrays)


def run_seeds(config: TrainConfig, run_dir, log: Callable[[str], None] = print) -> dict:
    """Run ``config.seeds`` seeds; with more than one, aggregate them (000's stability analysis).

    Each seed trains in ``run_dir/seed_<s>``; ``run_dir/metrics.json`` then holds
    every seed's test metrics under ``seeds`` and their mean and standard
    deviation under ``test``. Compare two such runs with
    ``python -m jettf.evaluate --compare RUN_A RUN_B`` (Welch's t-test).
    """
    if config.seeds == 1:
        return run(config, run_dir, log)
    run_dir = RunDir(run_dir)
    _check_resumable(run_dir, config)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    run_dir.write_config(config, {"seed_dirs": [f"seed_{s}" for s in range(config.seed, config.seed + config.seeds)]})
    per_seed = []
    for seed in range(config.seed, config.seed + config.seeds):
        log(f"=== seed {seed} ===")
        per_seed.append(run(dataclasses.replace(config, seed=seed, seeds=1), run_dir.path / f"seed_{seed}", log))
    summary_keys = ("accuracy", "auc", "auc_mean")
    metrics = jm.json_safe({
        **{k: per_seed[0][k] for k in ("task", "model", "dataset", "classes", "params")},
        "seeds": [{"seed": config.seed + i, **{k: m["test"][k] for k in summary_keys if k in m["test"]}}
                  for i, m in enumerate(per_seed)],
        "test": jm.mean_std_over_folds([{k: m["test"][k] for k in summary_keys if k in m["test"]}
                                        for m in per_seed]),
    })
    run_dir.write_metrics(metrics)
    return metrics
