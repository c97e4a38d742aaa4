"""Hypermodels: the search space of each model, in keras-tuner's idiom.

A hypermodel's ``build(hp)`` declares hyperparameters with ``hp.Int``, ``hp.Float``, ``hp.Choice`` and
``hp.Boolean`` (``parent_name``/``parent_values`` make one active only for some values of another) and
returns the :class:`~jettf.training.config.TrainConfig` settings they stand for: top-level fields
(``model``, ``learning_rate``, ``crop``, ``global_features``, ...) and ``model_options`` (arguments of
the model's ``build_<model>`` function). It returns settings, not a Keras model: every trial trains
through :func:`jettf.training.trainer.fit_validate`, so the tuned settings are a ``--config`` file for
``python -m jettf.train`` as they are.

    >>> import keras_tuner as kt
    >>> CaloCNN().build(kt.HyperParameters())          # defaults: 004's best ECAL network
    {'model': 'calo_cnn', 'learning_rate': 0.0001, 'model_options': {'conv_blocks': 3, ...}}

Shipped (``--hypermodel NAME``): ``effnet_s`` (002), ``ensemble`` (000), ``lenet`` (002's benchmark),
``calo_cnn`` and ``dense`` (004, on ``electron_images`` by default).
Your own: a function ``build(hp) -> dict`` or a :class:`JetHyperModel` subclass in a module or file, given
as ``--hypermodel MODULE:NAME`` or ``--hypermodel path/to/file.py:NAME`` (see ``tuning/README.md``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from typing import Optional

import keras_tuner as kt

__all__ = ["JetHyperModel", "EffNetS", "Ensemble", "LeNet", "CaloCNN", "Dense", "HYPERMODELS", "get_hypermodel",
           "trial_config", "plain"]


class JetHyperModel(kt.HyperModel):
    """Base of jettf's hypermodels: ``build(hp)`` returns TrainConfig overrides.

    Args:
        image_side: the dataset's image side in pixels (crop choices larger than it are dropped).
        quick: the search runs with ``--quick`` (small generated data; hypermodels may shrink the model).

    Class attribute ``dataset``: the dataset the space is meant for (the search's default ``--dataset``).
    """

    dataset: Optional[str] = None

    def __init__(self, image_side: Optional[int] = None, quick: bool = False, name: Optional[str] = None,
                 tunable: bool = True):
        super().__init__(name=name or type(self).__name__, tunable=tunable)
        self.image_side, self.quick = image_side, quick

    def crop(self, hp, values: list, default: int) -> int:
        """``hp.Choice("crop", ...)`` over the centre crops (pixels) that fit in the dataset's images."""
        fitting = [v for v in values if self.image_side is None or v <= self.image_side]
        if not fitting:
            raise ValueError(f"hypermodel {self.name}: crop: no value of {values} fits the "
                             f"{self.image_side}x{self.image_side} images; expected a dataset of >= {min(values)} px")
        return hp.Choice("crop", fitting, default=default if default in fitting else fitting[-1])


class EffNetS(JetHyperModel):
    """EffNet-S of 002 (Baruah et al., "In Search of Scalable & Lightweight Image-based Jet Taggers").

    002 scans phi = -13..-9 (S0..S4, 36..64 px, Table 2), feeds 35->28 or 40->32 centre crops of
    standardized 3-channel images, uses no dropout below 90 px, Adam at its default rate, and adds a
    200-unit MLP block after the aggregation layer when global features are used (Sec. 2.5).
    Defaults: 002's S0 on 40 -> 32 crops without dropout at Adam's 1e-3.
    """

    dataset = "top_tagging_images"

    def build(self, hp) -> dict:
        # Compound-scaling exponent; the network runs at 224 * 1.15**phi px (36..64).
        phi = hp.Int("phi", -13, -9, default=-13)
        # Centre crop of the standardized image in pixels.
        crop = self.crop(hp, [24, 28, 32, 36, 40], default=32)
        # Top dropout; 002 finds none is needed below 90 px.
        dropout = hp.Float("dropout", 0.0, 0.5, default=0.0)
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
        # Concatenate the standardized global jet features after the aggregation layer.
        features = hp.Boolean("global_features", default=False)
        width = hp.Int("mlp_width", 32, 512, step=8, default=200, parent_name="global_features", parent_values=[True])
        depth = hp.Int("mlp_depth", 1, 3, default=1, parent_name="global_features", parent_values=[True])
        options = {"phi": phi, "dropout_rate": dropout}
        if features:
            options["mlp_units"] = [width] * depth
        return {"model": "effnet_s", "crop": crop, "learning_rate": learning_rate, "global_features": features,
                "model_options": options}


class Ensemble(JetHyperModel):
    """ResNet50 + InceptionV3 ensemble of 000 (Bassa et al., Sec. 3.1).

    000: concatenated pooled features, a 512-unit ReLU fusion layer, dropout 0.5, Adam at 3e-4, both
    backbones fine-tuned; it gives no search, so the ranges are ours, around its choices. Global
    features stay off: JetNet's jet_phi is 0 for every jet (relative coordinates), which the feature
    standardization rejects. Under ``--quick`` ResNet50 gets no 224 px resize in front, so trials
    stay small on a CPU.
    """

    dataset = "jetnet_images"
    #: Which backbone layers train: all (000), only the last k of each backbone, or none.
    BACKBONE_TRAINING = {"all": None, "last_30": 30, "last_10": 10, "frozen": 0}

    def build(self, hp) -> dict:
        learning_rate = hp.Float("learning_rate", 1e-5, 1e-3, sampling="log", default=3e-4)
        options = {
            "fusion_units": hp.Choice("fusion_units", [128, 256, 512, 1024], default=512),
            "dropout": hp.Float("dropout", 0.0, 0.7, default=0.5),
            "trainable_backbone_layers": self.BACKBONE_TRAINING[
                hp.Choice("backbone_training", list(self.BACKBONE_TRAINING), default="all")],
            "branches": hp.Choice("branches", ["both", "resnet50", "inception_v3"], default="both"),
        }
        if self.quick:
            options["resnet50_input_size"] = None
        return {"model": "ensemble", "learning_rate": learning_rate, "model_options": options}


class LeNet(JetHyperModel):
    """LeNet-5 style benchmark CNN of 002 (Baruah et al., Fig. 2 left).

    5x5 convolutions of 20 and 50 filters, max-pooling, a 500-unit dense layer, 28/32/40 px inputs.
    002 fixes this network; the ranges are ours, around it (its settings are the defaults).
    """

    dataset = "top_tagging_images"

    def build(self, hp) -> dict:
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
        conv1 = hp.Int("conv1_filters", 8, 64, step=4, default=20)
        conv2 = hp.Int("conv2_filters", 16, 128, step=2, default=50)
        kernel = hp.Choice("kernel_size", [3, 5], default=5)
        width = hp.Int("dense_width", 32, 1024, sampling="log", default=500)
        layers = hp.Int("dense_layers", 1, 2, default=1)
        dropout = hp.Float("dropout", 0.0, 0.5, default=0.0)
        crop = self.crop(hp, [28, 32, 40], default=32)
        features = hp.Boolean("global_features", default=False)
        return {"model": "lenet", "learning_rate": learning_rate, "crop": crop, "global_features": features,
                "model_options": {"filters": [conv1, conv2], "kernel_size": kernel, "dense_units": [width] * layers,
                                  "dropout": dropout}}


class CaloCNN(JetHyperModel):
    """Conv-block calorimeter CNN of 004 (Collado thesis, Ch. 3).

    The ranges are those of the thesis' Bayesian search for convolutional networks (Table 3.3, 150
    iterations with Sherpa), kept in one place: :data:`jettf.models.calo_cnn.SEARCH_SPACE`. Learning
    rates are sampled on a log scale. Defaults are the best ECAL network of Table 3.5 (3 blocks of 117
    filters, 2 dense layers of 160 units, learning rate 1e-4, no dropout). Table 3.4 is :class:`Dense`.
    Searched on 004's electrons by default (both images: one conv tower each).
    """

    dataset = "electron_images"

    def build(self, hp) -> dict:
        from jettf.models.calo_cnn import SEARCH_SPACE as table_3_3

        options = {
            "conv_blocks": hp.Int("conv_blocks", *table_3_3["conv_blocks"], default=3),
            "filters": hp.Int("filters", *table_3_3["filters"], default=117),
            "dense_layers": hp.Int("dense_layers", *table_3_3["dense_layers"], default=2),
            "units": hp.Int("units", *table_3_3["units"], default=160),
        }
        learning_rate = hp.Float("learning_rate", *table_3_3["learning_rate"], sampling="log", default=1e-4)
        options["dropout"] = hp.Float("dropout", *table_3_3["dropout"], default=0.0)
        return {"model": "calo_cnn", "learning_rate": learning_rate, "model_options": options}


class Dense(JetHyperModel):
    """Fully connected network on high-level features of 004 (Collado thesis, Tables 3.4 and A.2).

    The ranges are those of the thesis' Bayesian search for fully connected networks (Table 3.4), kept in
    one place: :data:`jettf.models.dense.SEARCH_SPACE`; learning rates on a log scale. Defaults are the best
    HL network of Table 3.5 (5 layers of 149 units, learning rate 1e-3, dropout 0.0019). The network reads
    only global features: searched on ``electron_images``' expert features (``--global-features`` is set), or by
    ``python -m jettf.calo ... --tune N`` with the feature subsets of 004's tables.
    """

    dataset = "electron_images"

    def build(self, hp) -> dict:
        from jettf.models.dense import SEARCH_SPACE as table_3_4

        options = {
            "dense_layers": hp.Int("dense_layers", *table_3_4["dense_layers"], default=5),
            "units": hp.Int("units", *table_3_4["units"], default=149),
            "dropout": hp.Float("dropout", *table_3_4["dropout"], default=0.0019),
        }
        learning_rate = hp.Float("learning_rate", *table_3_4["learning_rate"], sampling="log", default=1e-3)
        return {"model": "dense", "learning_rate": learning_rate, "model_options": options, "global_features": True}


#: ``--hypermodel NAME`` -> class.
HYPERMODELS = {"effnet_s": EffNetS, "ensemble": Ensemble, "lenet": LeNet, "calo_cnn": CaloCNN, "dense": Dense}


class _FunctionHyperModel(JetHyperModel):
    """A plain ``build(hp) -> dict`` function as a hypermodel (its ``dataset`` attribute, if any, is the default)."""

    def __init__(self, function, **kwargs):
        super().__init__(name=function.__name__, **kwargs)
        self.function = function
        self.dataset = getattr(function, "dataset", None)

    def build(self, hp) -> dict:
        return self.function(hp)


def _load(spec: str):
    """The object named by ``MODULE:NAME`` or ``path/to/file.py:NAME``."""
    where, _, attr = spec.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise FileNotFoundError(f"--hypermodel {spec}: no file {path}")
        module_spec = importlib.util.spec_from_file_location(f"_jettf_hypermodel_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ValueError(f"--hypermodel {spec}: cannot import module {where!r} ({err})") from None
    if not hasattr(module, attr):
        raise ValueError(f"--hypermodel {spec}: {where} defines no {attr!r}")
    return getattr(module, attr)


def get_hypermodel(spec, image_side: Optional[int] = None, quick: bool = False) -> JetHyperModel:
    """The hypermodel ``spec`` names: a shipped name, ``MODULE:NAME`` or ``FILE.py:NAME``, or the object itself.

    The object may be a :class:`JetHyperModel` subclass (instantiated with ``image_side`` and ``quick``),
    another ``keras_tuner.HyperModel`` subclass or instance, or a function ``build(hp) -> dict``.
    """
    obj = spec
    if isinstance(spec, str):
        if spec in HYPERMODELS:
            return HYPERMODELS[spec](image_side=image_side, quick=quick, name=spec)
        elif ":" in spec:
            obj = _load(spec)
        else:
            raise ValueError(f"--hypermodel {spec!r}: expected one of {sorted(HYPERMODELS)}, MODULE:NAME or "
                             "path/to/file.py:NAME")
    if isinstance(obj, type) and issubclass(obj, JetHyperModel):
        return obj(image_side=image_side, quick=quick)
    if isinstance(obj, type) and issubclass(obj, kt.HyperModel):
        return obj()
    if isinstance(obj, kt.HyperModel):
        return obj
    if callable(obj):
        return _FunctionHyperModel(obj, image_side=image_side, quick=quick)
    raise ValueError(f"--hypermodel {spec}: expected a keras_tuner.HyperModel or a function build(hp) -> dict, "
                     f"got {type(obj).__name__}")


def trial_config(base, overrides: dict, where: str = "hypermodel"):
    """``base`` (a TrainConfig) with a hypermodel's ``overrides``; ``model_options`` are merged, not replaced.

    Unknown settings and options the model's builder does not take are errors naming ``where``.
    """
    from jettf.training.config import TrainConfig

    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: build(hp) returned {type(overrides).__name__}; expected a dict of TrainConfig "
                         "settings")
    values = base.to_dict()
    values.update({k: v for k, v in overrides.items() if k != "model_options"})
    values["model_options"] = {**base.model_options, **dict(overrides.get("model_options") or {})}
    config = TrainConfig.from_dict(plain(values), where=where)
    _check_model_options(config.model, config.model_options, where)
    return config


def _check_model_options(model: str, options: dict, where: str) -> None:
    import jettf.models as zoo

    builder = zoo.info(model).builder
    parameters = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = sorted(set(parameters) - {"n_classes", "input_shape", "n_global_features", "name"})
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{where}: model_options {unknown} are not options of jettf.models {model!r}; "
                         f"expected some of {accepted}")


def plain(value):
    """numpy scalars (keras-tuner's values) as Python numbers, inside dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value

