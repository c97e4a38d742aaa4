"""Resumable fitting: epochs or rounds, with a checkpoint after every epoch.

A *stage* (one fold, or the final fit) is a sequence of *segments*. In epoch
mode (000's K-fold setup) there is one segment of a fixed number of epochs.
In round mode (002, section 2.5) each round of the training split is one
segment, trained until the validation loss has not improved for ``patience``
epochs; the rounds repeat for several sweeps.

After every epoch the full model (weights and optimizer state) and a small
progress document are written atomically to the stage's checkpoint folder,
so killing the process loses at most the epoch in flight; :func:`fit_stage`
picks up exactly there.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, List, Optional

import keras
import numpy as np

from jettf.utils import atomic_path, read_json, write_json

__all__ = ["Segment", "fit_stage"]


@dataclasses.dataclass(frozen=True)
class Segment:
    """One stretch of training on one dataset.

    Attributes:
        name: shown in progress lines, e.g. ``"round 2/4 (sweep 1)"``.
        make_dataset: zero-argument callable returning the training tf.data.Dataset.
        max_epochs: upper bound on epochs in this segment.
        patience: stop the segment when validation loss has not improved for this
            many epochs (None: always run ``max_epochs``).
        n_examples: jets per epoch, for images/s.
    """

    name: str
    make_dataset: Callable
    max_epochs: int
    patience: Optional[int] = None
    n_examples: int = 0


class _EpochCheckpoint(keras.callbacks.Callback):
    """Tracks progress, early stopping and throughput; checkpoints every epoch."""

    def __init__(self, folder: Path, progress: dict, segment: Segment, log: Callable[[str], None], prefix: str):
        super().__init__()
        self.folder = folder
        self.progress = progress
        self.segment = segment
        self.log = log
        self.prefix = prefix
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        seconds = time.perf_counter() - self._start
        logs["images_per_s"] = self.segment.n_examples / seconds if seconds > 0 and self.segment.n_examples else 0.0
        logs["epoch_seconds"] = seconds
        p = self.progress
        for key, value in logs.items():
            p["history"].setdefault(key, []).append(value)
        p["epoch"] += 1
        p["segment_epoch"] += 1
        val_loss = logs.get("val_loss", logs.get("loss", math.inf))
        if val_loss < p["segment_best"] - 1e-7:
            p["segment_best"], p["wait"] = val_loss, 0
        else:
            p["wait"] += 1
        if val_loss < p["best_val_loss"]:
            p["best_val_loss"], p["best_epoch"] = val_loss, p["epoch"]
            self._save(self.folder / "best.keras")
        stop = p["segment_epoch"] >= self.segment.max_epochs or (
            self.segment.patience is not None and p["wait"] >= self.segment.patience
        )
        if stop:
            p["segment"] += 1
            p["segment_epoch"], p["wait"], p["segment_best"] = 0, 0, math.inf
            self.model.stop_training = True
        self._save(self.folder / "last.keras")
        write_json(self.folder / "progress.json", p)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if k not in ("images_per_s", "epoch_seconds"))
        self.log(
            f"{self.prefix} {self.segment.name} epoch {p['epoch']}: {shown}, "
            f"{logs['images_per_s']:.0f} img/s, {seconds:.1f} s"
        )

    def _save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            self.model.save(tmp)


def _new_progress() -> dict:
    return {
        "epoch": 0,
        "segment": 0,
        "segment_epoch": 0,
        "wait": 0,
        "segment_best": math.inf,
        "best_val_loss": math.inf,
        "best_epoch": 0,
        "history": {},
        "done": False,
    }


def fit_stage(
    model_fn: Callable[[], keras.Model],
    segments: List[Segment],
    validation_data,
    folder,
    *,
    callbacks=(),
    restore_best: bool = True,
    log: Callable[[str], None] = print,
    prefix: str = "",
):
    """Fit a model through ``segments``, resuming from ``folder`` if it holds a checkpoint.

    Args:
        model_fn: builds and compiles a fresh model (called only when there is
            nothing to resume).
        segments: the training schedule.
        validation_data: a tf.data.Dataset evaluated after every epoch.
        folder: checkpoint folder of this stage.
        callbacks: extra Keras callbacks (e.g. CSV and TensorBoard loggers).
        restore_best: return the weights of the epoch with the lowest validation loss.

    Returns:
        ``(model, progress)``, where progress holds the per-epoch history.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    progress_path = folder / "progress.json"
    if progress_path.exists() and (folder / "last.keras").exists():
        progress = read_json(progress_path)
        progress["segment_best"] = float(progress["segment_best"])
        model = keras.models.load_model(folder / "last.keras")
        if progress["epoch"]:
            log(f"{prefix} resuming after epoch {progress['epoch']} (segment {progress['segment'] + 1}/{len(segments)})")
    else:
        progress = _new_progress()
        model = model_fn()
    while progress["segment"] < len(segments):
        segment = segments[progress["segment"]]
        tracker = _EpochCheckpoint(folder, progress, segment, log, prefix)
        remaining = segment.max_epochs - progress["segment_epoch"]
        model.fit(
            segment.make_dataset(),
            validation_data=validation_data,
            initial_epoch=progress["epoch"],
            epochs=progress["epoch"] + remaining,
            callbacks=[tracker, *callbacks],
            verbose=0,
        )
    if restore_best and (folder / "best.keras").exists():
        model = keras.models.load_model(folder / "best.keras")
    progress["done"] = True
    write_json(progress_path, progress)
    return model, progress


def history_arrays(progress: dict) -> dict:
    """The per-epoch history as numpy arrays (for plots)."""
    return {k: np.asarray(v) for k, v in progress["history"].items()}
