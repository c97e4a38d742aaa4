"""Resumable fitting driven by a schedule, with a checkpoint after every epoch.

A *stage* (one fold, or the final fit) follows a schedule object:
:class:`jettf.data.RoundSchedule` for 002's rounds (each round trained until
the validation loss has not improved for ``patience`` epochs), or
:class:`EpochSchedule` for 000's fixed number of epochs per fold. Both expose
``done``, ``current()`` (with ``name``, ``split`` and ``n_examples``),
``end_epoch(val_loss) -> finished`` and JSON ``state_dict()`` /
``load_state_dict()``.

After every epoch the full model (weights and optimizer state, ``epoch_<k>.keras``),
the schedule's state and the history (``progress.json``, which names the
checkpoint) are written atomically to the stage's checkpoint folder, so killing the process loses at most the epoch in flight;
:func:`fit_stage` resumes exactly there. Every epoch's randomness is a
function of the stage seed and the epoch number alone: the training data is
shuffled with :func:`epoch_seed` and the model's random layers (flips,
dropout) are reseeded with it before the epoch, so a resumed run computes the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np

from jettf.utils import atomic_path, read_json, write_json

__all__ = ["EpochSchedule", "fit_stage", "epoch_seed", "reseed_random_layers"]


@dataclasses.dataclass(frozen=True)
class _Span:
    name: str
    split: str
    n_examples: int


class EpochSchedule:
    """A fixed number of epochs over one training split (000's K-fold scheme).

    With ``patience``, training also stops early once the validation loss has
    not improved (by more than 1e-7) for ``patience`` epochs (tuning trials).
    """

    def __init__(self, epochs: int, split: str, n_examples: int, patience: Optional[int] = None):
        if epochs < 1:
            raise ValueError(f"EpochSchedule: epochs must be >= 1, got {epochs}")
        if patience is not None and patience < 1:
            raise ValueError(f"EpochSchedule: patience must be >= 1 or None, got {patience}")
        self.epochs, self.epoch = int(epochs), 0
        self.patience = None if patience is None else int(patience)
        self.best, self.wait = math.inf, 0
        self.span = _Span(f"epochs on {split}", split, int(n_examples))

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs or (self.patience is not None and self.wait >= self.patience)

    def current(self) -> _Span:
        return self.span

    @property
    def remaining_epochs(self) -> int:
        """Epochs left at most (early stopping may end sooner)."""
        return 0 if self.done else self.epochs - self.epoch

    def end_epoch(self, val_loss: float) -> bool:
        self.epoch += 1
        if float(val_loss) < self.best - 1e-7:
            self.best, self.wait = float(val_loss), 0
        else:
            self.wait += 1
        return self.done

    def state_dict(self) -> dict:
        state = {"epoch": self.epoch, "epochs": self.epochs}
        if self.patience is not None:
            state.update(patience=self.patience, best=None if math.isinf(self.best) else self.best, wait=self.wait)
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("epochs") != self.epochs or state.get("patience") != self.patience:
            raise ValueError(f"EpochSchedule: saved plan has {state.get('epochs')} epochs and patience "
                             f"{state.get('patience')}, this one {self.epochs} and {self.patience}")
        self.epoch = int(state["epoch"])
        self.best = math.inf if state.get("best") is None else float(state["best"])
        self.wait = int(state.get("wait", 0))


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch of a stage: shuffling and random layers depend on (seed, epoch) only."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(1)[0] & 0x7FFFFFFF)


def reseed_random_layers(model: keras.Model, seed: int) -> None:
    """Set the state of every Keras random-number generator in ``model`` (RandomFlip, Dropout, ...) from ``seed``.

    Keras does not save these states with a model, so without this a resumed run would draw
    different flips and dropout masks than the run it continues.
    """
    states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    for i, state in enumerate(states):
        state.assign(np.array([epoch_seed(seed, i), 0], dtype=state.dtype))


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class _StageProgbar(keras.callbacks.ProgbarLogger):
    """Keras' own progress bar (within-epoch progress on a terminal, one line per epoch in logs), headed by the
    stage, the epoch within the schedule and the stage's ETA."""

    def __init__(self, header: Callable[[], str]):
        super().__init__()
        self.header = header

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose:
            print(self.header(), flush=True)
        self.epochs = 1  # the header replaces Keras' "Epoch e/E", which counts fit calls here
        super().on_epoch_begin(epoch, logs)


class _EpochCheckpoint(keras.callbacks.Callback):
    """Feeds the schedule, keeps the history and best model, checkpoints every epoch."""

    def __init__(self, folder: Path, progress: dict, schedule):
        super().__init__()
        self.folder, self.progress, self.schedule = folder, progress, schedule
        self.span = schedule.current()
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["images_per_s"] = self.span.n_examples / seconds if seconds > 0 else 0.0
        p = self.progress
        for key, value in logs.items():
            p["history"].setdefault(key, []).append(value)
        p["epoch"] += 1
        p["seconds"] = p.get("seconds", 0.0) + seconds
        val_loss = logs.get("val_loss", logs.get("loss", math.inf))
        if val_loss < p["best_val_loss"]:
            p["best_val_loss"], p["best_epoch"] = val_loss, p["epoch"]
            self._save(self.folder / "best.keras")
        if self.schedule.end_epoch(val_loss):
            self.model.stop_training = True
        p["schedule"] = self.schedule.state_dict()
        # The epoch's checkpoint has its own name and progress.json points to it, so a kill between the two writes
        # resumes from the previous, consistent pair; the older checkpoint goes only after progress.json moved on.
        p["checkpoint"] = f"epoch_{p['epoch']:04d}.keras"
        self._save(self.folder / p["checkpoint"])
        write_json(self.folder / "progress.json", p)
        for stale in self.folder.glob("epoch_*.keras"):
            if stale.name != p["checkpoint"]:
                stale.unlink()

    def _save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            self.model.save(tmp)


def _header(prefix: str, schedule, progress: dict) -> str:
    span, done = schedule.current(), progress["epoch"]
    remaining = getattr(schedule, "remaining_epochs", None)
    total = f"/{done + remaining}" if remaining is not None else ""
    if done and remaining is not None:
        timing = f", ETA {_minutes(remaining * progress['seconds'] / done)}"
    else:
        timing = f", elapsed {_minutes(progress.get('seconds', 0.0))}" if done else ""
    return f"{prefix}{span.name}, epoch {done + 1}{total}{timing}"


def fit_stage(
    model_fn: Callable[[], keras.Model],
    schedule,
    make_train_dataset: Callable,
    validation_data,
    folder,
    *,
    seed: int = 0,
    callbacks=(),
    restore_best: bool = True,
    log: Callable[[str], None] = print,
    prefix: str = "",
    verbose: Optional[int] = None,
):
    """Fit a model through ``schedule``, resuming from ``folder`` if it holds a checkpoint.

    Args:
        model_fn: builds and compiles a fresh model (called only when there is
            nothing to resume).
        schedule: an :class:`EpochSchedule` or :class:`jettf.data.RoundSchedule`.
        make_train_dataset: ``f(span, seed) -> tf.data.Dataset`` for the schedule's
            current span (a round, or the whole training split), shuffled with ``seed``.
        validation_data: a tf.data.Dataset evaluated after every epoch (None:
            track the training loss).
        folder: checkpoint folder of this stage.
        seed: the stage's seed; epoch ``e`` uses :func:`epoch_seed` ``(seed, e)``.
        callbacks: extra Keras callbacks (e.g. CSV and TensorBoard loggers).
        restore_best: return the model of the epoch with the lowest validation loss.
        verbose: Keras' progress bar: 1 (within-epoch bar), 2 (a line per epoch), 0 (silent);
            default 1 on a terminal, else 2.

    Returns:
        ``(model, progress)``; ``progress["history"]`` holds the per-epoch logs.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    progress_path = folder / "progress.json"
    progress = read_json(progress_path) if progress_path.exists() else {}
    if progress.get("checkpoint") and (folder / progress["checkpoint"]).exists():
        schedule.load_state_dict(progress["schedule"])
        model = keras.models.load_model(folder / progress["checkpoint"])
        log(f"{prefix}resuming after epoch {progress['epoch']}")
    else:
        progress = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": 0, "history": {}, "done": False}
        model = model_fn()
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
    while not schedule.done:
        epoch = progress["epoch"]
        this_seed = epoch_seed(seed, epoch)
        reseed_random_layers(model, this_seed)
        progbar = _StageProgbar(lambda: _header(prefix, schedule, progress))
        model.fit(
            make_train_dataset(schedule.current(), this_seed),
            validation_data=validation_data,
            initial_epoch=epoch,
            epochs=epoch + 1,
            callbacks=[_EpochCheckpoint(folder, progress, schedule), progbar, *callbacks],
            shuffle=False,  # the dataset is shuffled (with the epoch's seed) by tf.data
            verbose=verbose,
        )
    if restore_best and (folder / "best.keras").exists():
        model = keras.models.load_model(folder / "best.keras")
    progress["done"] = True
    write_json(progress_path, progress)
    return model, progress
