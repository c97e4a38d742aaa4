"""`TrainConfig`: every setting of a training run, typed, with its default and its help, in one place.

The command line of ``python -m jettf.train`` is generated from the dataclass (:func:`add_arguments`),
so a setting exists once: its type, default and help are the field's. :func:`resolve` applies, in
increasing priority, the paper preset of the dataset (:data:`PRESETS`: 000's K-fold ensemble for
JetNet, 002's rounds for top tagging), the ``--quick`` overrides, a ``--config`` JSON file (e.g. a
tuning sweep's ``best_config.json``) and explicit command-line values. A run directory saves the
result as ``config.json``; fields marked ``resume_may_change`` (paths, bootstrap size, device
settings) are the only ones that may differ when a run directory is resumed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Optional, Union

__all__ = ["TrainConfig", "PRESETS", "QUICK", "resolve", "add_arguments", "from_arguments", "read_config_file",
           "default_dataset"]


def _field(default, help: str, *, choices=None, resume_may_change: bool = False, metavar=None):
    meta = {"help": help, "choices": choices, "resume_may_change": resume_may_change, "metavar": metavar}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class TrainConfig:
    """A training run (defaults: the generic ones; :func:`resolve` applies the paper presets)."""

    task: str = _field("multiclass", "5-class (JetNet) or signal vs background", choices=("multiclass", "binary"))
    dataset: Optional[str] = _field(None, "NAME or NAME/CONFIG of a tfds_builders dataset (default per task)")
    model: str = _field("lenet", "a name from jettf.models.available()")
    model_options: dict = _field({}, "architecture options passed to jettf.models.build (JSON values)")
    signal: Optional[str] = _field(None, "binary task: signal class (default per dataset)")
    background: Optional[str] = _field(None, "binary task: background class (default per dataset)")
    scheme: str = _field("kfold", "000's K-fold cross-validation or 002's rounds", choices=("kfold", "rounds"))
    folds: int = _field(5, "K of K-fold cross-validation")
    epochs: int = _field(15, "epochs per fold (kfold) or the most epochs per round (rounds)")
    round_size: int = _field(300_000, "jets per round (002: 300000)")
    patience: Optional[int] = _field(None, "epochs without a better validation loss that end a round (002: 10)")
    sweeps: int = _field(1, "passes over all rounds")
    batch_size: int = _field(128, "jets per batch")
    learning_rate: float = _field(1e-3, "Adam learning rate")
    global_features: bool = _field(False, "fuse the dataset's global jet features into the model (002)")
    reweight: Optional[str] = _field(None, "sample weights from training-split histograms: the background (or every "
                                           "class) to the signal's pt spectrum, or also flat in mass",
                                     choices=("pt", "pt,mass"))
    standardize: bool = _field(False, "per-pixel standardization with the training split's mean and std (002)")
    std_floor: float = _field(0.05, "smallest standardization divisor, as a fraction of the channel's largest "
                                    "pixel std (keeps rarely filled border pixels near zero)")
    crop: Optional[Union[int, float]] = _field(None, "centre crop after standardization: a side in pixels, or a "
                                                     "fraction of the image (002: 0.8, i.e. 35 -> 28, 40 -> 32)")
    colormap: Optional[str] = _field(None, "one-channel images to RGB through this matplotlib colormap (000)")
    resize: Optional[int] = _field(None, "resize the prepared image to this side (bilinear)")
    channels: Optional[str] = _field(None, "keep only these image channels, comma-separated and in this order (003 "
                                           "Table 4's subsets, e.g. tracks,ecal); default all", metavar="NAMES")
    flips: Optional[str] = _field("both", "random flips in training (002)", choices=("eta", "phi", "both", "none"))
    seed: int = _field(0, "seed of weights, shuffling and flips; the same seed gives the same run")
    seeds: int = _field(1, "train this many seeds (seed, seed+1, ...) and report mean and std (000)")
    n_boot: int = _field(1000, "bootstrap resamples for the 95% intervals", resume_may_change=True)
    deterministic: bool = _field(True, "reproducible ops and input order (slightly slower)")
    densify: str = _field("auto", "where sparse images become dense: tf.data ('host'), the model ('device'), or "
                                  "'auto' (jettf.data.densify_on_host)", choices=("auto", "host", "device"),
                          resume_may_change=True)
    mixed_precision: Optional[bool] = _field(None, "bfloat16 compute (default: on with a GPU)", resume_may_change=True)
    jit_compile: Optional[bool] = _field(None, "XLA-compile the train step (default: on with a GPU)",
                                         resume_may_change=True)
    # Not resume_may_change: a resumed run must compute the weights the uninterrupted one would, and another
    # device count changes the float reduction order (and, on TensorFlow, per-replica batch-norm statistics and
    # random draws); the count used is in config.json's resolved.accelerator.
    devices: Optional[int] = _field(None, "data-parallel devices; --batch-size is the global batch, split across "
                                          "them (default: every visible GPU, 1 without GPUs; N: the first N GPUs, "
                                          "or N CPU devices on a machine without GPUs)", metavar="N")
    data_dir: Optional[str] = _field(None, "data directory (default: $JETTF_DATA_DIR or ./data)",
                                     resume_may_change=True)
    manual_dir: Optional[str] = _field(None, "folder with the public dataset files", resume_may_change=True)
    n_jets: Optional[int] = _field(None, "jets per class when the dataset is generated (or a cap on public files)")
    quick: bool = _field(False, "small generated dataset and model: minutes on 2 CPU cores")

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        """A config from JSON values; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{where}: unknown setting(s) {unknown}; expected fields of TrainConfig: {sorted(names)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def changed_for_resume(self, other: "TrainConfig") -> list:
        """Fields that differ from ``other`` and may not change when a run directory is resumed."""
        return [f.name for f in dataclasses.fields(self) if not f.metadata["resume_may_change"]
                and getattr(self, f.name) != getattr(other, f.name)]

    @property
    def classes(self) -> Optional[list]:
        """Binary tasks keep ``[background, signal]`` (label 1 = signal); multiclass keeps every class."""
        return [self.background, self.signal] if self.task == "binary" else None


#: Per dataset: the papers' settings (000 for JetNet, 002 for top tagging), the binary default classes.
PRESETS = {
    # Bassa et al. (000): 299x299 pT images, ResNet50+InceptionV3 ensemble, Adam 3e-4,
    # 5-fold CV with 15 epochs per fold; binary g vs X (t by default); images drawn as RGB.
    "jetnet_images": dict(dataset="jetnet_images/default", signal="t", background="g", model="ensemble",
                          scheme="kfold", folds=5, epochs=15, batch_size=32, learning_rate=3e-4, colormap="viridis"),
    # Baruah et al. (002): EffNet-S on 3-channel 40x40 images cropped to 32 after per-pixel
    # standardization, random flips, rounds of 300k jets with patience 10.
    "top_tagging_images": dict(dataset="top_tagging_images/effnet_s_40", signal="top", background="qcd",
                               model="effnet_s", scheme="rounds", round_size=300_000, patience=10, sweeps=1,
                               epochs=100, batch_size=128, learning_rate=1e-3, standardize=True, crop=0.8),
    # EnergyFlow Z+jet quark/gluon sample: 33x33 images, quark (signal) vs gluon.
    "quark_gluon_images": dict(dataset="quark_gluon_images/pt_33", signal="quark", background="gluon",
                               model="deeptop", scheme="kfold", folds=5, epochs=15, batch_size=128,
                               learning_rate=1e-3, standardize=True),
    # Andrews et al. (003, section 4): ResNet-15 on 125x125 tracks/ECAL/HCAL jet views, Adam 5e-4, batches of 32,
    # 30 epochs, the model of the best validation score (here: the lowest validation loss, one round over all
    # training jets; 003 also halves the rate every 10 epochs, which this trainer does not). 003 does not say how
    # it scales the images; per-pixel standardization with the divisor floored at half the channel's largest
    # pixel std: the sparse crystal-level ECAL view has many rarely hit pixels whose own std is tiny, and the
    # default floor (0.05) blew their rare hits up (ECAL-only AUC 0.61 against 0.79 with 0.5 at 1,500 jets per
    # class; benchmarks/README.md, 003).
    "cms_quark_gluon_images": dict(dataset="cms_quark_gluon_images/jet", signal="quark", background="gluon",
                                   model="resnet15", scheme="rounds", round_size=10_000_000, patience=10, sweeps=1,
                                   epochs=30, batch_size=32, learning_rate=5e-4, standardize=True, std_floor=0.5),
    # Collado (004) chapter 3: the calo CNN with one conv tower per image (31x31 ECAL, 8x8 HCAL), Table 3.5's
    # best ECAL+HCAL network, the stored per-candidate weights in the loss; early stopping on the validation loss
    # (one round over all training candidates). Learning rate 1e-3 instead of 004's 1e-4, which is tuned for
    # 10-20x more candidates than a CPU run has; no flips (004 uses none; ECAL and HCAL must stay aligned).
    "electron_images": dict(dataset="electron_images/et", signal="electron", background="jet", model="calo_cnn",
                            model_options=dict(conv_blocks=3, filters=47, dense_layers=2, units=146, dropout=0.0),
                            scheme="rounds", round_size=10_000_000, patience=5, sweeps=1, epochs=30, batch_size=128,
                            learning_rate=1e-3, standardize=True, flips="none"),
    # Collado (004) chapter 4: the calo CNN of App. A.1.1 on the 32x32 muon image (PFN / EFN: --model pfn|efn on
    # the stored cells); as for electrons otherwise.
    "muon_images": dict(dataset="muon_images/image", signal="prompt", background="non-prompt", model="calo_cnn",
                        model_options=dict(conv_blocks=3, filters=56, dense_layers=4, units=178, dropout=0.2062),
                        scheme="rounds", round_size=10_000_000, patience=5, sweeps=1, epochs=30, batch_size=128,
                        learning_rate=1e-3, standardize=True, flips="none"),
}
#: The quick configuration of each dataset.
QUICK_DATASETS = {"jetnet_images": "jetnet_images/quick", "top_tagging_images": "top_tagging_images/quick",
                  "quark_gluon_images": "quark_gluon_images/quick",
                  "cms_quark_gluon_images": "cms_quark_gluon_images/quick", "electron_images": "electron_images/quick",
                  "muon_images": "muon_images/quick"}
#: --quick: a run that finishes in minutes on 2 CPU cores with results well above chance: a small
#: generated dataset, small images, a small model (the ensemble becomes LeNet), standardized images.
QUICK = dict(folds=2, epochs=12, batch_size=64, learning_rate=2e-3, round_size=400, patience=3, sweeps=1, n_boot=100,
             colormap=None, standardize=True)
QUICK_MODELS = {"ensemble": "lenet"}
#: --quick: smaller versions of the presets' architectures.
QUICK_MODEL_OPTIONS = {"calo_cnn": dict(conv_blocks=2, filters=16, dense_layers=1, units=32, dropout=0.0)}


def default_dataset(task: str) -> str:
    """Both tasks default to JetNet (000): 5 classes, or g vs t."""
    return "jetnet_images"


def resolve(task: Optional[str] = None, quick: bool = False, file_config: Optional[dict] = None,
            **overrides) -> TrainConfig:
    """The run's configuration: preset <- quick <- ``file_config`` <- ``overrides`` (``None`` = not given)."""
    file_config = dict(file_config or {})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    quick = bool(overrides.pop("quick", file_config.pop("quick", quick)))
    task = overrides.pop("task", None) or task or file_config.get("task") or "multiclass"
    dataset = overrides.get("dataset") or file_config.get("dataset") or default_dataset(task)
    name = dataset.partition("/")[0]
    if name not in PRESETS:
        raise ValueError(f"--dataset: no preset for {name!r}; choose from {sorted(PRESETS)}")
    values = dict(PRESETS[name])
    if quick:
        values.update(QUICK, dataset=QUICK_DATASETS[name])
        values["model"] = QUICK_MODELS.get(values["model"], values["model"])
        if "model_options" in values:
            values["model_options"] = QUICK_MODEL_OPTIONS.get(values["model"], {})
    values.update(file_config)
    if "model" in overrides and "model_options" not in overrides and overrides["model"] != values["model"]:
        values.pop("model_options", None)  # a preset's architecture options belong to the preset's model
    values.update(overrides)
    if "/" not in values["dataset"]:  # NAME alone: the preset's (or the quick) config of that dataset
        values["dataset"] = QUICK_DATASETS[name] if quick else PRESETS[name]["dataset"]
    values.update(task=task, quick=quick)
    if task == "multiclass":
        values.update(signal=None, background=None)
    config = TrainConfig.from_dict(values)
    _check(config)
    return config


def _check(config: TrainConfig) -> None:
    for f in dataclasses.fields(config):
        choices = f.metadata["choices"]
        value = getattr(config, f.name)
        if choices and value is not None and value not in choices:
            raise ValueError(f"--{f.name.replace('_', '-')}: {value!r} is not one of {list(choices)}")
    if config.scheme == "rounds" and config.patience is None:
        raise ValueError("--scheme rounds needs --patience (002: 10)")
    for name in ("folds", "epochs", "round_size", "sweeps", "batch_size", "seeds"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(config, name)}")
    if config.scheme == "kfold" and config.folds < 2:
        raise ValueError(f"--folds: K-fold cross-validation needs K >= 2, got {config.folds}")


# ----------------------------------------------------------------------------- command line
def _type_of(annotation):
    """(python type, optional) of a field annotation."""
    hint = annotation if not isinstance(annotation, str) else eval(annotation, vars(typing))  # noqa: S307
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is Union:
        return (args[0] if len(args) == 1 else _number), True
    return hint, False


def _number(text: str):
    """An int if it reads as one, else a float (``--crop 32`` or ``--crop 0.8``)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _model_option(text: str):
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--model-option expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(parser: argparse.ArgumentParser, skip=("quick",)) -> None:
    """One ``--option`` per :class:`TrainConfig` field, with its type, choices and help (default: None = not given)."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata, help=f.metadata["help"].replace("%", "%%"))  # argparse formats help with %
        kind, _ = _type_of(f.type)
        if f.name == "model_options":
            parser.add_argument("--model-option", dest="model_options", action="append", type=_model_option,
                                default=None, metavar="KEY=VALUE", help=meta["help"] + ", repeatable")
        elif kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=meta["help"])
        else:
            parser.add_argument(flag, type=kind, choices=meta["choices"], default=None, help=meta["help"],
                                metavar=meta["metavar"])


def from_arguments(args: argparse.Namespace) -> dict:
    """The :class:`TrainConfig` values given on the command line (unset ones left out)."""
    values = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        values[f.name] = dict(value) if f.name == "model_options" else value
    return values


def read_config_file(path) -> dict:
    """Settings from ``--config``: a TrainConfig JSON object, or a run directory's ``config.json``."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read a JSON configuration ({err})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of TrainConfig settings")
    return dict(values.get("config", values))
