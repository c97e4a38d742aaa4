"""The keras-tuner tuner that trains each trial with the project's trainer, and the oracles it uses.

:class:`JetTuner` is a keras-tuner ``BaseTuner``: the oracle (Bayesian optimization, random search or
Hyperband; :func:`make_oracle`) proposes hyperparameter values, the hypermodel turns them into
TrainConfig overrides, and :meth:`JetTuner.run_trial` trains the search's base configuration with
them through :func:`jettf.training.trainer.fit_validate` (one fit on the training split, scored on
the validation split or fold 0 of K-fold). It reports ``val_auc`` (binary AUC, or the mean
one-vs-rest AUC), ``val_loss``, ``val_accuracy``, ``epochs``, ``params`` and ``seconds``.

Each trial trains in ``<project>/trial_<id>/run`` (config, a checkpoint after every epoch), writes
``trial_<id>/result.json`` and appends a line per execution to ``trial_<id>/executions.jsonl``.

Resuming is exact: a search killed (even with SIGKILL) and run again continues the trial that was
running at its last finished epoch, and the trainer's per-epoch seeds make its weights and metrics
those of an uninterrupted search. For that the oracles here differ from keras-tuner's in three
ways: their state files are written atomically; a trial left "running" by a kill is run again even
when the oracle state did not record it as running yet; and the Bayesian optimizer's random restarts
are seeded from the trial count (keras-tuner keeps that random state out of its saved state, so a
resumed search would propose other trials than an uninterrupted one).

Chief/worker mode needs nothing here: keras-tuner's ``BaseTuner`` reads ``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (see :mod:`tuning.distributed`).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional

import keras_tuner as kt
import numpy as np

from jettf.utils import atomic_path, write_json
from tuning.hypermodels import plain, trial_config

__all__ = ["JetTuner", "make_oracle", "objective_for", "ORACLES", "OBJECTIVES", "trial_metrics", "PROJECT"]

ORACLES = ("bayesian", "random", "hyperband")
#: objective name -> direction
OBJECTIVES = {"val_auc": "max", "val_loss": "min"}
PROJECT = "keras_tuner"


def _write_state(path, state: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(state))


class _Resumable:
    """Oracle behaviour for exact resumes (mixed into keras-tuner's oracles)."""

    def save(self):
        _write_state(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        _write_state(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

    def reload(self):
        super().reload()
        # keras-tuner reads the trials in file-system order; the optimizer's fit depends on their order, so
        # restore the order they were created in (an uninterrupted search's).
        order = {trial_id: i for i, trial_id in enumerate(self.start_order)}
        self.trials = dict(sorted(self.trials.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))
        # A kill between saving a new trial and saving the oracle leaves a trial "RUNNING" that the
        # oracle does not know is running: run it again, as keras-tuner does for the trials it knows.
        for trial_id in sorted(self.trials):
            if self.trials[trial_id].status == kt.engine.trial.TrialStatus.RUNNING and \
                    trial_id not in self._retry_queue:
                self._retry_queue.append(trial_id)


class BayesianOracle(_Resumable, kt.oracles.BayesianOptimizationOracle):
    def populate_space(self, trial_id):
        # The optimizer's restarts come from this RandomState, which keras-tuner does not save: make it a
        # function of the seed and the trial count, so a resumed search proposes what an uninterrupted one does.
        self._random_state = np.random.RandomState([int(self.seed), len(self.trials)])
        return super().populate_space(trial_id)


class RandomOracle(_Resumable, kt.oracles.RandomSearchOracle):
    pass


class HyperbandOracle(_Resumable, kt.oracles.HyperbandOracle):
    pass


def objective_for(name: str) -> kt.Objective:
    """The keras-tuner objective ``name`` with its direction (AUC up, loss down)."""
    if name not in OBJECTIVES:
        raise ValueError(f"--objective must be one of {sorted(OBJECTIVES)}, got {name!r}")
    return kt.Objective(name, direction=OBJECTIVES[name])


def make_oracle(kind: str, objective: str = "val_auc", max_trials: Optional[int] = 20, seed: int = 0,
                initial_points: Optional[int] = None, max_epochs: int = 9, factor: int = 3) -> kt.Oracle:
    """A keras-tuner oracle: ``"bayesian"`` (Gaussian process, default), ``"random"`` or ``"hyperband"``.

    ``seed`` is the search's seed; keras-tuner draws a random seed for 0, so the oracle gets
    ``seed + 1``. ``initial_points``: random trials before the Bayesian optimizer takes over
    (keras-tuner's default: 3 per tuned hyperparameter). ``max_epochs``/``factor``: Hyperband's
    largest epoch budget and reduction factor; ``max_trials`` also caps Hyperband.
    """
    common = dict(objective=objective_for(objective), seed=int(seed) + 1, max_consecutive_failed_trials=3)
    if kind == "bayesian":
        return BayesianOracle(max_trials=max_trials, num_initial_points=initial_points, **common)
    if kind == "random":
        return RandomOracle(max_trials=max_trials, **common)
    if kind == "hyperband":
        oracle = HyperbandOracle(max_epochs=int(max_epochs), factor=int(factor), **common)
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
        hypermodel: a :class:`~tuning.hypermodels.JetHyperModel` (``build(hp)`` -> TrainConfig overrides).
        base_config: the :class:`~jettf.training.config.TrainConfig` every trial starts from.
        directory: the search's output folder; trials live in ``directory/keras_tuner``.
        log: where progress lines go.
        on_trial_done: ``f(tuner)`` after each trial has been reported (standalone and workers).
    """

    def __init__(self, oracle, hypermodel, base_config, directory, log: Callable[[str], None] = print,
                 on_trial_done: Optional[Callable] = None, overwrite=False):
        self.base_config = base_config
        self.log = log
        self.on_trial_done = on_trial_done
        super().__init__(oracle, hypermodel, directory=str(directory), project_name=PROJECT, overwrite=overwrite)

    # ------------------------------------------------------------------ trials
    def trial_dir(self, trial_id) -> Path:
        return Path(self.get_trial_dir(trial_id))

    def config_for(self, hyperparameters):
        """The full TrainConfig of a trial with these ``keras_tuner.HyperParameters`` (a trial's)."""
        overrides = self.hypermodel.build(hyperparameters.copy())
        return trial_config(self.base_config, overrides, where=f"hypermodel {self.hypermodel.name}")

    def on_search_begin(self):
        super().on_search_begin()
        self.save()  # from now on a rerun reloads this search (keras-tuner saves first after a trial)

    def run_trial(self, trial, *args, **kwargs) -> dict:
        import keras

        from jettf.training.trainer import fit_validate

        keras.backend.clear_session()
        values = plain(dict(trial.hyperparameters.values))
        try:
            config = self.config_for(trial.hyperparameters)
        except ValueError as err:  # a hypermodel that returns bad settings: stop the search, do not retry
            raise kt.errors.FatalError(str(err)) from None
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
        self.log(f"{prefix}{json.dumps(values, sort_keys=True)}")
        start = time.perf_counter()
        result = fit_validate(config, folder / "run", log=lambda line: self.log(prefix + line), epochs=epochs,
                              initial_model=initial_model)
        metrics = trial_metrics(result, time.perf_counter() - start)
        write_json(folder / "result.json", {
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "hyperparameters": values,
            "metrics": {k: (None if math.isnan(v) else v) for k, v in metrics.items()},
            "val_loss": result.get("val_loss"),
            "history": result.get("history"),
            "best_epoch": result.get("best_epoch"),
            "train_split": result.get("train_split"),
            "validation_split": result.get("validation_split"),
            "finished": time.time(),
        })
        self.log(f"{prefix}done: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return metrics

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.on_trial_done is not None:
            self.on_trial_done(self)

    # ------------------------------------------------------------------ models
    def save_model(self, trial_id, model, step=0):
        """Nothing to do: the trainer checkpoints every epoch into the trial's folder."""

    def load_model(self, trial):
        """The trained tagger of ``trial`` (the epoch with the lowest validation loss)."""
        from jettf.training.trainer import tagger_of
        import keras

        import jettf.images.preparation  # noqa: F401 (registers ImagePreparation)
        import jettf.models  # noqa: F401 (registers the custom layers)

        path = self.trial_dir(trial.trial_id) / "run" / "checkpoints" / "fit" / "best.keras"
        if not path.exists():
            raise FileNotFoundError(f"{path}: trial {trial.trial_id} has no saved model (it ran on another machine?)")
        return tagger_of(keras.models.load_model(path))
