"""Resumable fitting driven by a schedule, with a checkpoint after every epoch.

A *stage* (one fold, or the final fit) follows a schedule object:
:class:`jettf.data.RoundSchedule` for 002's rounds (each round trained until
the validation loss has not improved for ``patience`` epochs), or
:class:`EpochSchedule` for 000's fixed number of epochs per fold. Both expose
``done``, ``current()`` (with ``name``, ``split`` and ``n_examples``),
``end_epoch(val_loss) -> finished`` and JSON ``state_dict()`` /
``load_state_dict()``.

After every epoch the full model (weights and optimizer state), the
schedule's state and the history are written atomically to the stage's
checkpoint folder, so killing the process loses at most the epoch in flight;
:func:`fit_stage` resumes exactly there.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, Optional

import keras

from jettf.utils import atomic_path, read_json, write_json

__all__ = ["EpochSchedule", "fit_stage"]


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


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class _EpochCheckpoint(keras.callbacks.Callback):
    """Feeds the schedule, keeps the history and best model, checkpoints every epoch."""

    def __init__(self, folder: Path, progress: dict, schedule, log: Callable[[str], None], prefix: str):
        super().__init__()
        self.folder, self.progress, self.schedule = folder, progress, schedule
        self.log, self.prefix = log, prefix
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
        self._save(self.folder / "last.keras")
        write_json(self.folder / "progress.json", p)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "images_per_s")
        remaining = getattr(self.schedule, "remaining_epochs", None)
        timing = (f"ETA {_minutes(remaining * p['seconds'] / p['epoch'])}" if remaining is not None
                  else f"elapsed {_minutes(p['seconds'])}")
        self.log(f"{self.prefix}{self.span.name}, epoch {p['epoch']}: {shown}, "
                 f"{logs['images_per_s']:.0f} img/s, {timing}")

    def _save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            self.model.save(tmp)


def fit_stage(
    model_fn: Callable[[], keras.Model],
    schedule,
    make_train_dataset: Callable,
    validation_data,
    folder,
    *,
    callbacks=(),
    restore_best: bool = True,
    log: Callable[[str], None] = print,
    prefix: str = "",
):
    """Fit a model through ``schedule``, resuming from ``folder`` if it holds a checkpoint.

    Args:
        model_fn: builds and compiles a fresh model (called only when there is
            nothing to resume).
        schedule: an :class:`EpochSchedule` or :class:`jettf.data.RoundSchedule`.
        make_train_dataset: ``f(span) -> tf.data.Dataset`` for the schedule's
            current span (a round, or the whole training split).
        validation_data: a tf.data.Dataset evaluated after every epoch (None:
            track the training loss).
        folder: checkpoint folder of this stage.
        callbacks: extra Keras callbacks (e.g. CSV and TensorBoard loggers).
        restore_best: return the model of the epoch with the lowest validation loss.

    Returns:
        ``(model, progress)``; ``progress["history"]`` holds the per-epoch logs.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    progress_path = folder / "progress.json"
    if progress_path.exists() and (folder / "last.keras").exists():
        progress = read_json(progress_path)
        schedule.load_state_dict(progress["schedule"])
        model = keras.models.load_model(folder / "last.keras")
        log(f"{prefix}resuming after epoch {progress['epoch']}")
    else:
        progress = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": 0, "history": {}, "done": False}
        model = model_fn()
    while not schedule.done:
        tracker = _EpochCheckpoint(folder, progress, schedule, log, prefix)
        model.fit(
            make_train_dataset(schedule.current()),
            validation_data=validation_data,
            initial_epoch=progress["epoch"],
            epochs=progress["epoch"] + 1_000_000,  # the schedule stops each span
            callbacks=[tracker, *callbacks],
            verbose=0,
        )
    if restore_best and (folder / "best.keras").exists():
        model = keras.models.load_model(folder / "best.keras")
    progress["done"] = True
    write_json(progress_path, progress)
    return model, progress
