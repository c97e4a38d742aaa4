"""Hypermodels: a search space (``tuning/spaces/<name>.yaml``) as a keras-tuner ``HyperModel``.

``build(hp)`` declares the space's hyperparameters on ``hp`` and returns the
*trainer-configuration overrides* they stand for (not a Keras model): the
tuner (:class:`tuning.tuner.JetTuner`) merges them into the resolved
configuration and trains with the project's trainer, so the same settings
work with ``python -m jettf.train --config``. Declaring is cheap, so
keras-tuner's conditional-scope exploration (it calls ``build`` several times)
costs nothing.

    >>> from tuning.hypermodels import get_hypermodel
    >>> hm = get_hypermodel("calo_cnn")               # 004's Table 3.3 ranges
    >>> import keras_tuner as kt
    >>> hm.build(kt.HyperParameters())["model_options"]["conv_blocks"]
    3

Shipped: ``effnet_s`` (002), ``ensemble`` (000), ``lenet`` (002's benchmark),
``calo_cnn`` (004). A custom space is any YAML file in the same format
(see :mod:`tuning.space`).
"""

from __future__ import annotations

import copy

import keras_tuner as kt

from tuning.space import SearchSpace, available_spaces, load_space

__all__ = ["JetHyperModel", "get_hypermodel", "available", "merge_config"]


class JetHyperModel(kt.HyperModel):
    """A :class:`~tuning.space.SearchSpace` as a keras-tuner hypermodel returning config overrides."""

    def __init__(self, space: SearchSpace):
        super().__init__(name=space.name, tunable=True)
        self.space = space

    def build(self, hp) -> dict:
        return self.space.config_for(self.space.declare(hp))

    def config_for(self, values: dict) -> dict:
        """Overrides for a trial's hyperparameter values (``trial.hyperparameters.values``)."""
        return self.space.config_for(values)


def available() -> list:
    """Names of the shipped hypermodels."""
    return available_spaces()


def get_hypermodel(name_or_path) -> JetHyperModel:
    """The hypermodel of a shipped space name or of a space file."""
    return JetHyperModel(load_space(name_or_path))


def merge_config(base: dict, *overrides: dict) -> dict:
    """``base`` updated by each override in turn; ``model_options`` dicts are merged, not replaced."""
    out = copy.deepcopy(base)
    out.setdefault("model_options", {})
    for o in overrides:
        o = copy.deepcopy(o or {})
        options = o.pop("model_options", None) or {}
        out.update(o)
        out["model_options"] = {**out["model_options"], **options}
    return out
