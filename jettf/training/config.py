"""Training configurations: the papers' settings as presets, resolved into one dict.

``resolve_config`` merges, in increasing priority: the task preset (000's
K-fold ensemble for JetNet, 002's rounds for top tagging), the ``--quick``
overrides, a ``--config`` JSON file (e.g. the best trial of a tuning sweep),
and explicit command-line values. The result is saved as ``config.json`` in
the run directory and is all a run needs to be repeated.
"""

from __future__ import annotations

import copy
from typing import Optional

__all__ = ["DATASET_DEFAULTS", "resolve_config"]

# Per dataset: the default configuration, binary signal/background classes,
# the model and input preparation that go with it, and the training scheme.
DATASET_DEFAULTS = {
    # Bassa et al. (000): 299x299 pT images, ResNet50+InceptionV3 ensemble,
    # Adam 3e-4, 5-fold CV with 15 epochs per fold; binary g vs X (t by default).
    "jetnet_images": {
        "config": "default",
        "quick_config": "quick",
        "signal": "t",
        "background": "g",
        "model": "ensemble",
        "scheme": "kfold",
        "folds": 5,
        "epochs": 15,
        "batch_size": 32,
        "learning_rate": 3e-4,
        "to_rgb": True,
        "standardize": False,
        "global_features": False,
    },
    # Baruah et al. (002): EffNet-S on 3-channel 40x40 images cropped to 32,
    # per-pixel standardization, random flips, rounds with patience 10.
    "top_tagging_images": {
        "config": "effnet_s_40",
        "quick_config": "quick",
        "signal": "top",
        "background": "qcd",
        "model": "effnet_s",
        "scheme": "rounds",
        "round_size": 300_000,
        "patience": 10,
        "sweeps": 1,
        "epochs": 100,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "to_rgb": False,
        "standardize": True,
        "global_features": False,
    },
    # EnergyFlow Z+jet quark/gluon sample: 33x33 images, quark (signal) vs gluon.
    "quark_gluon_images": {
        "config": "pt_33",
        "quick_config": "quick",
        "signal": "quark",
        "background": "gluon",
        "model": "deeptop",
        "scheme": "kfold",
        "folds": 5,
        "epochs": 15,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "to_rgb": False,
        "standardize": True,
        "global_features": False,
    },
}

TASK_DATASETS = {"multiclass": "jetnet_images", "binary": "jetnet_images"}

# --quick: a run that finishes in minutes on 2 CPU cores with results well
# above chance. Small generated dataset, small images, a small model.
QUICK = {
    "folds": 2,
    "epochs": 12,
    "batch_size": 64,
    "learning_rate": 2e-3,
    "round_size": 400,
    "patience": 3,
    "sweeps": 1,
    "n_boot": 100,
    "model_for": {"ensemble": "lenet"},
    "to_rgb": False,
    # Per-pixel standardization (002) lets a small CNN learn in a few epochs.
    "standardize": True,
}

BASE = {
    "seed": 0,
    "seeds": 1,
    "n_boot": 1000,
    "model_options": {},
    "deterministic": True,
    "flips": "both",
    "mixed_precision": None,
    "jit_compile": None,
    "data_dir": None,
    "manual_dir": None,
    "n_jets": None,
}


def resolve_config(task: str, dataset: Optional[str] = None, quick: bool = False, file_config=None, **overrides) -> dict:
    """The fully resolved configuration of a run.

    Args:
        task: ``"multiclass"`` or ``"binary"``.
        dataset: ``NAME`` or ``NAME/CONFIG`` of a builder in ``tfds_builders``.
        quick: the small out-of-the-box configuration.
        file_config: a dict loaded from ``--config`` (e.g. tuned hyperparameters).
        overrides: explicit values; ``None`` means "not given".
    """
    if task not in ("multiclass", "binary"):
        raise ValueError(f"--task must be 'multiclass' or 'binary', got {task!r}")
    file_config = dict(file_config or {})
    dataset = dataset or file_config.pop("dataset", None) or TASK_DATASETS[task]
    name, _, dataset_config = dataset.partition("/")
    if name not in DATASET_DEFAULTS:
        raise ValueError(f"--dataset: unknown dataset {name!r}; choose from {sorted(DATASET_DEFAULTS)}")
    defaults = copy.deepcopy(DATASET_DEFAULTS[name])
    config = {**BASE, **defaults, "task": task}
    if quick:
        config.update({k: v for k, v in QUICK.items() if k != "model_for"})
        config["model"] = QUICK["model_for"].get(config["model"], config["model"])
    config["dataset"] = f"{name}/{dataset_config or (defaults['quick_config'] if quick else defaults['config'])}"
    config.pop("config"), config.pop("quick_config")
    config.update(file_config)
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["quick"] = quick
    if task == "multiclass":
        config.pop("signal"), config.pop("background")
    if config["scheme"] not in ("kfold", "rounds"):
        raise ValueError(f"--scheme must be 'kfold' or 'rounds', got {config['scheme']!r}")
    return config
