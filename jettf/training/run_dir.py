"""The run directory: everything a training result needs to be trusted and reused.

Layout::

    RUN_DIR/
      config.json          {"config": the TrainConfig, "resolved": dataset fingerprint, classes, specs, versions}
      state.json           progress (finished folds, seeds, the stage in flight) for --resume
      metrics.json         machine-readable results (written at the end)
      test_predictions.npz the test jets' labels y, class probabilities probs [N, classes], jet (pt, eta, phi, m)
                           and, where the metrics are weighted, weight: what paired comparisons of runs need
      report.md, plots/    the human report
      model.keras          the final tagger (its image preparation and statistics inside)
      checkpoints/<stage>/ epoch_<k>.keras + progress.json (which names it), one folder per fold / final stage
      logs/                CSV and TensorBoard logs per stage

Every file is written atomically, so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Optional

from jettf.utils import read_json, write_json

__all__ = ["RunDir", "environment_versions"]


def environment_versions() -> dict:
    """Versions of the packages a result depends on, for config.json."""
    import importlib.metadata as md

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("jettf", "keras", "tensorflow", "jax", "numpy", "tensorflow-datasets", "pythia8mc", "fastjet"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return versions


class RunDir:
    """Paths and JSON state of one training run."""

    def __init__(self, path):
        self.path = Path(path)

    # files
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.json"

    @property
    def predictions_path(self) -> Path:
        return self.path / "test_predictions.npz"

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def report_path(self) -> Path:
        return self.path / "report.md"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    def checkpoint_dir(self, stage: str) -> Path:
        return self.path / "checkpoints" / stage

    def log_dir(self, stage: str) -> Path:
        return self.path / "logs" / stage

    # JSON documents
    def exists(self) -> bool:
        return self.config_path.exists()

    def read_config(self) -> dict:
        """``{"config": TrainConfig values, "resolved": what the run used}`` from ``config.json``."""
        if not self.config_path.exists():
            raise FileNotFoundError(
                f"{self.path}: not a jettf run directory (no config.json); "
                "pass the --out directory of a `python -m jettf.train` run"
            )
        document = read_json(self.config_path)
        if not isinstance(document, dict) or "config" not in document:
            raise ValueError(f"{self.config_path}: expected {{'config': ..., 'resolved': ...}} as written by jettf.train "
                             "(a run of an older jettf: train it again)")
        document.setdefault("resolved", {})
        return document

    def read_train_config(self):
        """The run's :class:`jettf.training.config.TrainConfig`."""
        from jettf.training.config import TrainConfig

        return TrainConfig.from_dict(self.read_config()["config"], where=str(self.config_path))

    def write_config(self, config, resolved: Optional[dict] = None) -> None:
        write_json(self.config_path, {"config": config.to_dict(), "resolved": dict(resolved or {})})

    def read_state(self) -> dict:
        return read_json(self.state_path) if self.state_path.exists() else {}

    def write_state(self, state: dict) -> None:
        write_json(self.state_path, state)

    def read_metrics(self) -> dict:
        return read_json(self.metrics_path)

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.metrics_path, metrics)

    def stage_done(self, stage: str) -> Optional[dict]:
        """The recorded result of a finished stage (fold or final fit), or None."""
        return self.read_state().get("stages", {}).get(stage, {}).get("result")

    def mark_stage_done(self, stage: str, result: dict) -> None:
        state = self.read_state()
        state.setdefault("stages", {})[stage] = {"result": result}
        self.write_state(state)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
