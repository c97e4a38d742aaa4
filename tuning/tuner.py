"""The keras-tuner tuner that trains each trial with the project's trainer.

:class:`JetTuner` is a keras-tuner ``BaseTuner``: the oracle (Bayesian
optimization, random search or Hyperband; :func:`make_oracle`) proposes
hyperparameter values, and :meth:`JetTuner.run_trial` turns them into a jettf
configuration (the search's resolved base configuration plus the hypermodel's
overrides) and calls :func:`jettf.training.trainer.fit_validate`: one fit on
the training split, scored on the validation split (or fold 0 of K-fold),
with 002's rounds or epochs with early stopping. It returns
``val_auc`` (binary AUC, or the mean one-vs-rest AUC for several classes),
``val_loss``, ``val_accuracy``, ``epochs``, ``params`` and ``seconds`` to the
oracle.

Each trial trains in ``<project>/trial_<id>/run`` (config, checkpoint after
every epoch), writes ``trial_<id>/result.json`` and appends one line per
execution to ``trial_<id>/executions.jsonl``. keras-tuner saves the oracle
after every trial and, when a search is reloaded, hands the trials that were
running back out first; ``fit_validate`` then resumes them at their last
finished epoch. So an interrupted search, rerun, loses at most one epoch per
running trial.

Chief/worker mode needs nothing here: keras-tuner's ``BaseTuner`` reads
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``
(see :mod:`tuning.distributed`).
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import keras_tuner as kt

from jettf.utils import write_json
from tuning.hypermodels import JetHyperModel, merge_config

__all__ = ["JetTuner", "make_oracle", "objective_for", "ORACLES", "OBJECTIVES", "trial_metrics"]

ORACLES = ("bayesian", "random", "hyperband")
#: objective name -> direction
OBJECTIVES = {"val_auc": "max", "val_loss": "min"}
PROJECT = "keras_tuner"


def objective_for(name: str) -> kt.Objective:
    """The keras-tuner objective ``name`` with its direction (AUC up, loss down)."""
    if name not in OBJECTIVES:
        raise ValueError(f"--objective must be one of {sorted(OBJECTIVES)}, got {name!r}")
    return kt.Objective(name, direction=OBJECTIVES[name])


def make_oracle(kind: str, objective: str = "val_auc", max_trials: Optional[int] = 20, seed: int = 0,
                initial_points: Optional[int] = None, max_epochs: int = 9, factor: int = 3) -> kt.Oracle:
    """A keras-tuner oracle: ``"bayesian"`` (Gaussian process, default), ``"random"`` or ``"hyperband"``.

    ``seed`` is the search's seed; keras-tuner draws a random seed for 0, so the
    oracle gets ``seed + 1``. ``initial_points``: random trials before the Bayesian
    optimizer takes over (keras-tuner's default: 3 per tuned hyperparameter).
    ``max_epochs``/``factor``: Hyperband's largest epoch budget and reduction
    factor; ``max_trials`` also caps Hyperband.
    """
    common = dict(objective=objective_for(objective), seed=int(seed) + 1, max_consecutive_failed_trials=3)
    if kind == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials, num_initial_points=initial_points,
                                                     **common)
    if kind == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if kind == "hyperband":
        oracle = kt.oracles.HyperbandOracle(max_epochs=int(max_epochs), factor=int(factor), **common)
        oracle.max_trials = max_trials
        return oracle
    raise ValueError(f"--oracle must be one of {list(ORACLES)}, got {kind!r}")


def trial_metrics(result: dict, seconds: float) -> dict:
    """The numbers a trial reports to the oracle, from :func:`fit_validate`'s result."""
    validation = result.get("validation") or {}
    auc = validation.get("auc", validation.get("auc_mean"))

    def number(x):
        return float("nan") if x is None else float(x)

    return {
        "val_auc": number(auc),
        "val_loss": number(result.get("val_loss")),
        "val_accuracy": number(validation.get("accuracy")),
        "epochs": float(result.get("epochs") or 0),
        "params": float(result.get("params") or 0),
        "seconds": float(seconds),
    }


class JetTuner(kt.engine.base_tuner.BaseTuner):
    """Runs each trial through :func:`jettf.training.trainer.fit_validate`.

    Args:
        oracle: from :func:`make_oracle`.
        hypermodel: a :class:`~tuning.hypermodels.JetHyperModel`.
        base_config: the resolved trainer configuration every trial starts from.
        directory: the search's output folder; trials live in ``directory/keras_tuner``.
        log: where progress lines go.
        on_trial_done: ``f(tuner)`` after each trial has been reported (standalone and workers).
    """

    def __init__(self, oracle, hypermodel: JetHyperModel, base_config: dict, directory,
                 log: Callable[[str], None] = print, on_trial_done: Optional[Callable] = None, overwrite=False):
        self.base_config = dict(base_config)
        self.log = log
        self.on_trial_done = on_trial_done
        super().__init__(oracle, hypermodel, directory=str(directory), project_name=PROJECT, overwrite=overwrite)

    # ------------------------------------------------------------------ trials
    def trial_dir(self, trial_id) -> Path:
        return Path(self.get_trial_dir(trial_id))

    def trial_config(self, values: dict) -> dict:
        """The full trainer configuration of a trial with hyperparameter ``values``."""
        return merge_config(self.base_config, self.hypermodel.config_for(values))

    def run_trial(self, trial, *args, **kwargs) -> dict:
        from jettf.training.trainer import fit_validate
        import keras

        keras.backend.clear_session()
        values = dict(trial.hyperparameters.values)
        overrides = self.hypermodel.config_for(values)
        config = merge_config(self.base_config, overrides)
        folder = self.trial_dir(trial.trial_id)
        with open(folder / "executions.jsonl", "a") as f:
            f.write(json.dumps({"tuner_id": self.tuner_id, "pid": os.getpid(), "started": time.time()}) + "\n")
        epochs = initial_model = None
        if "tuner/epochs" in values:  # Hyperband: an epoch budget, continuing a previous trial's model
            epochs = int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
            if values.get("tuner/trial_id"):
                initial_model = self.trial_dir(values["tuner/trial_id"]) / "run" / "checkpoints" / "fit" / "best.keras"
                if not initial_model.exists():
                    initial_model = None
                    epochs = int(values["tuner/epochs"])
        prefix = f"[trial {trial.trial_id}] "
        self.log(f"{prefix}{json.dumps(_plain(values), sort_keys=True)}")
        start = time.perf_counter()
        try:
            result = fit_validate(config, folder / "run", log=lambda line: self.log(prefix + line), epochs=epochs,
                                  initial_model=initial_model)
        except Exception:
            self.log(f"{prefix}failed:\n{traceback.format_exc()}")
            raise
        metrics = trial_metrics(result, time.perf_counter() - start)
        write_json(folder / "result.json", {
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "hyperparameters": _plain(values),
            "config_overrides": overrides,
            "metrics": {k: (None if math.isnan(v) else v) for k, v in metrics.items()},
            "train_split": result.get("train_split"),
            "validation_split": result.get("validation_split"),
            "finished": time.time(),
        })
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        self.log(f"{prefix}done: {shown}")
        return metrics

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.on_trial_done is not None:
            self.on_trial_done(self)

    # ------------------------------------------------------------------ models
    def save_model(self, trial_id, model, step=0):
        """Nothing to do: the trainer checkpoints every epoch into the trial's folder."""

    def load_model(self, trial):
        """The trained model of ``trial`` (the epoch with the lowest validation loss)."""
        import keras

        import jettf.models  # noqa: F401 (registers the custom layers)

        path = self.trial_dir(trial.trial_id) / "run" / "checkpoints" / "fit" / "best.keras"
        if not path.exists():
            raise FileNotFoundError(f"{path}: trial {trial.trial_id} has no saved model (it ran on another machine?)")
        return keras.models.load_model(path)


def _plain(values: dict) -> dict:
    """JSON-able hyperparameter values."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}
