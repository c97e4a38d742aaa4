"""What a search leaves behind: the trials table, the best configuration, the objective plot.

- ``trials.csv`` and ``trials.md``: one row per trial in creation order: id,
  status, objective, validation AUC / loss / accuracy, epochs, seconds,
  parameters, the worker that ran it, then every hyperparameter.
- ``best_config.json``: the best trial's complete TrainConfig, a ``--config`` file for
  ``python -m jettf.train``; ``best_trial.json`` says where it came from and the command
  that trains it.
- ``objective.png``: the objective of every trial in order, with the best so far.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
from pathlib import Path
from typing import Optional

from jettf.utils import atomic_path, read_json, write_json
from tuning.hypermodels import plain
from tuning.tuner import OBJECTIVES, PROJECT

__all__ = ["trial_rows", "write_trials_table", "best_trial", "write_best", "train_command", "objective_figure",
           "plot_objective", "write_results", "best_so_far"]

METRIC_COLUMNS = ("val_auc", "val_loss", "val_accuracy", "epochs", "seconds", "params")
OBJECTIVE_LABELS = {"val_auc": "validation AUC (higher is better)", "val_loss": "validation loss (lower is better)"}


def _trial_order(trial_id: str):
    return (0, int(trial_id)) if str(trial_id).isdigit() else (1, str(trial_id))


def _last(trial, name: str) -> Optional[float]:
    try:
        if trial.metrics.exists(name):
            value = trial.metrics.get_last_value(name)
            return None if value is None or math.isnan(value) else float(value)
    except (KeyError, ValueError):
        pass
    return None


def trial_rows(oracle, project_dir, hp_names=()) -> list:
    """One dict per trial of ``oracle`` (a keras-tuner oracle holding the trials), in creation order."""
    rows = []
    project_dir = Path(project_dir)
    for trial_id in sorted(oracle.trials, key=_trial_order):
        trial = oracle.trials[trial_id]
        result_path = project_dir / f"trial_{trial_id}" / "result.json"
        result = read_json(result_path) if result_path.exists() else {}
        values = dict(trial.hyperparameters.values)
        row = {
            "trial": trial_id,
            "status": str(trial.status),
            "objective": None if trial.score is None or math.isnan(trial.score) else float(trial.score),
        }
        row.update({name: _last(trial, name) for name in METRIC_COLUMNS})
        row["worker"] = result.get("tuner_id")
        names = list(hp_names) + sorted(k for k in values if k not in hp_names)
        row.update({f"hp:{name}": values.get(name) for name in names})
        rows.append(row)
    return rows


def _columns(rows: list) -> list:
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_trials_table(rows: list, out_dir) -> None:
    """``trials.csv`` (every column) and ``trials.md`` (the same as a Markdown table)."""
    out_dir = Path(out_dir)
    columns = _columns(rows) or ["trial", "status", "objective"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _fmt(row.get(c)) for c in columns})
    with atomic_path(out_dir / "trials.csv") as tmp:
        Path(tmp).write_text(buffer.getvalue())
    lines = ["| " + " | ".join(c.removeprefix("hp:") for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    with atomic_path(out_dir / "trials.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def best_trial(oracle):
    """The best completed trial (by the oracle's objective and direction), or None."""
    best = [t for t in oracle.get_best_trials(1) if str(t.status) == "COMPLETED" and t.score is not None]
    return best[0] if best else None


def train_command(out_dir, trial_id) -> str:
    """The command that trains a trial's configuration (``best_config.json``) with the full trainer.

    Its run directory is named after the trial, so it is new for every best trial (a later, better
    trial gets its own) and the same command run again resumes or finds the run finished.
    """
    out_dir = Path(out_dir)
    return (f"python -m jettf.train --config {shlex.quote(str(out_dir / 'best_config.json'))} "
            f"--out {shlex.quote(str(out_dir / f'train-trial_{trial_id}'))}")


def write_best(out_dir, tuner, objective: str) -> Optional[dict]:
    """Write ``best_config.json`` and ``best_trial.json``; returns the best config (None: no completed trial).

    ``best_config.json`` is the best trial's complete TrainConfig (dataset with its config name, jet
    count, quick, data directory, every tuned value), so ``python -m jettf.train --config`` trains
    exactly what was tuned.
    """
    trial = best_trial(tuner.oracle)
    if trial is None:
        return None
    config = tuner.config_for(trial.hyperparameters).to_dict()
    write_json(Path(out_dir) / "best_config.json", config)
    write_json(Path(out_dir) / "best_trial.json", {
        "trial_id": trial.trial_id,
        "objective": objective,
        "score": trial.score,
        "hyperparameters": plain(dict(trial.hyperparameters.values)),
        "metrics": {name: _last(trial, name) for name in METRIC_COLUMNS},
        "trial_dir": f"{PROJECT}/trial_{trial.trial_id}",
        "train_with": train_command(out_dir, trial.trial_id),
    })
    return config


def best_so_far(scores: list, direction: str) -> list:
    """Running best of ``scores`` (None for failed trials) under ``direction`` ("max" or "min")."""
    out, best = [], None
    for s in scores:
        if s is not None and (best is None or (s > best if direction == "max" else s < best)):
            best = s
        out.append(best)
    return out


def objective_figure(rows: list, objective: str, direction: str):
    """Objective of each trial (points) and the best so far (line), over trials in creation order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scores = [r.get(objective) for r in rows]
    x = [int(r["trial"]) if str(r["trial"]).isdigit() else i for i, r in enumerate(rows)]  # ids are numbers
    fig, ax = plt.subplots(figsize=(6, 4))
    done = [(i, s) for i, s in zip(x, scores) if s is not None]
    if done:
        ax.plot([i for i, _ in done], [s for _, s in done], "o", color="tab:blue", alpha=0.7, label="trial")
    best = best_so_far(scores, direction)
    ax.step(x, [b if b is not None else float("nan") for b in best], where="post", color="tab:red",
            label="best so far")
    failed = [i for i, s in zip(x, scores) if s is None]
    if failed:
        ax.plot(failed, [min((s for _, s in done), default=0)] * len(failed), "x", color="gray", label="failed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial id (in the order created)")
    ax.set_ylabel(OBJECTIVE_LABELS.get(objective, objective))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_objective(rows: list, objective: str, direction: str, path) -> None:
    """:func:`objective_figure` as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = objective_figure(rows, objective, direction)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_results(out_dir, tuner, objective: str, hp_names=(), plot: bool = True) -> dict:
    """All of the above from a tuner's oracle; returns ``{"rows", "best_config"}``."""
    out_dir = Path(out_dir)
    rows = trial_rows(tuner.oracle, tuner.project_dir, hp_names)
    write_trials_table(rows, out_dir)
    config = write_best(out_dir, tuner, objective)
    if plot:
        plot_objective(rows, objective, OBJECTIVES[objective], out_dir / "objective.png")
    return {"rows": rows, "best_config": config}
