"""What a search leaves behind: the trials table, the best configuration, the objective plot.

- ``trials.csv`` and ``trials.md``: one row per trial in creation order: id,
  status, objective, validation AUC / loss / accuracy, epochs, seconds,
  parameters, the worker that ran it, then every hyperparameter.
- ``best_config.json``: the best trial's settings as a ``--config`` file for
  ``python -m jettf.train`` (dataset, model, model options, tuned trainer
  settings, input preparation); ``best_trial.json`` says where it came from.
- ``objective.png``: the objective of every trial in order, with the best so far.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Optional

from jettf.utils import atomic_path, read_json, write_json
from tuning.hypermodels import merge_config

__all__ = ["trial_rows", "write_trials_table", "best_trial", "best_config", "write_best", "plot_objective",
           "write_results", "best_so_far", "INPUT_KEYS"]

METRIC_COLUMNS = ("val_auc", "val_loss", "val_accuracy", "epochs", "seconds", "params")
#: Settings of the base configuration that shape the model's input; kept in best_config.json.
INPUT_KEYS = ("standardize", "to_rgb", "flips", "crop", "resize", "batch_size", "learning_rate", "global_features")


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


def best_config(base_config: dict, hypermodel, values: dict) -> dict:
    """The ``--config`` file of a trial: what ``python -m jettf.train --task ... --config`` needs to train it.

    Holds the dataset, the model and its full options, the tuned trainer settings
    and the base configuration's input preparation; not the run-specific settings
    (seed, data directory, number of jets, epochs of the tuning budget).
    """
    overrides = hypermodel.config_for(values)
    config = merge_config(base_config, overrides)
    out = {"dataset": config["dataset"], "model": config["model"], "model_options": config["model_options"]}
    for key in INPUT_KEYS:
        if key in config:
            out[key] = config[key]
    out.update({k: v for k, v in overrides.items() if k != "model_options"})
    return json.loads(json.dumps(out))


def write_best(out_dir, base_config: dict, hypermodel, oracle, objective: str) -> Optional[dict]:
    """Write ``best_config.json`` and ``best_trial.json``; returns the best config (None: no completed trial)."""
    trial = best_trial(oracle)
    if trial is None:
        return None
    values = dict(trial.hyperparameters.values)
    config = best_config(base_config, hypermodel, values)
    write_json(Path(out_dir) / "best_config.json", config)
    write_json(Path(out_dir) / "best_trial.json", {
        "trial_id": trial.trial_id,
        "objective": objective,
        "score": trial.score,
        "hyperparameters": {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()},
        "metrics": {name: _last(trial, name) for name in METRIC_COLUMNS},
        "trial_dir": f"{oracle_project_name(oracle)}/trial_{trial.trial_id}",
        "train_with": f"python -m jettf.train --task {base_config['task']} "
                      f"--config {Path(out_dir) / 'best_config.json'}",
    })
    return config


def oracle_project_name(oracle) -> str:
    return getattr(oracle, "_project_name", None) or "keras_tuner"


def best_so_far(scores: list, direction: str) -> list:
    """Running best of ``scores`` (None for failed trials) under ``direction`` ("max" or "min")."""
    out, best = [], None
    for s in scores:
        if s is not None and (best is None or (s > best if direction == "max" else s < best)):
            best = s
        out.append(best)
    return out


def plot_objective(rows: list, objective: str, direction: str, path) -> None:
    """Objective of each trial (points) and the best so far (line), over trials in creation order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [r.get(objective) for r in rows]
    x = list(range(1, len(rows) + 1))
    fig, ax = plt.subplots(figsize=(6, 4))
    done = [(i, s) for i, s in zip(x, scores) if s is not None]
    if done:
        ax.plot([i for i, _ in done], [s for _, s in done], "o", color="tab:blue", alpha=0.7, label="trial")
    best = best_so_far(scores, direction)
    ax.step(x, [b if b is not None else float("nan") for b in best], where="post", color="tab:red",
            label=f"best so far ({direction})")
    failed = [i for i, s in zip(x, scores) if s is None]
    if failed:
        ax.plot(failed, [min((s for _, s in done), default=0)] * len(failed), "x", color="gray", label="failed")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in the order created)")
    ax.set_ylabel(objective.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_results(out_dir, tuner, objective: str, plot: bool = True) -> dict:
    """All of the above from a tuner's oracle; returns ``{"rows", "best_config"}``."""
    out_dir = Path(out_dir)
    rows = trial_rows(tuner.oracle, tuner.project_dir, tuner.hypermodel.space.names)
    write_trials_table(rows, out_dir)
    config = write_best(out_dir, tuner.base_config, tuner.hypermodel, tuner.oracle, objective)
    if plot:
        from tuning.tuner import OBJECTIVES

        plot_objective(rows, objective, OBJECTIVES[objective], out_dir / "objective.png")
    return {"rows": rows, "best_config": config}
