"""Hyperparameter sweeps: search spaces as data, the --quick search end to end, resume, chief + workers."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import keras_tuner as kt
import pytest

from tuning import search
from tuning.hypermodels import get_hypermodel, merge_config
from tuning.space import available_spaces, load_space, parse_space

TINY = ["--n-jets", "20", "--epochs", "2", "--patience", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The tiny generated top-tagging dataset, built once for the module."""
    import jettf.data as jd

    folder = tmp_path_factory.mktemp("tuning_data")
    jd.build("top_tagging_images/quick", data_dir=str(folder), n_jets=20)
    return folder


def _read_rows(out: Path) -> list:
    with open(out / "trials.csv") as f:
        return list(csv.DictReader(f))


def _executions(out: Path) -> dict:
    return {p.parent.name: [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted((out / "keras_tuner").glob("trial_*/executions.jsonl"))}


# ---------------------------------------------------------------- spaces as data


def test_shipped_spaces_load_with_their_papers_ranges():
    assert set(available_spaces()) >= {"effnet_s", "ensemble", "lenet", "calo_cnn"}
    for name in available_spaces():
        space = load_space(name)
        assert space.hyperparameters and space.model == name

    # 004 Table 3.3, as recorded next to the model.
    from jettf.models.calo_cnn import SEARCH_SPACE

    calo = load_space("calo_cnn")
    for name, (low, high) in SEARCH_SPACE.items():
        assert (calo[name].spec["min"], calo[name].spec["max"]) == (low, high), name
    assert calo["learning_rate"].spec["sampling"] == "log"

    effnet = load_space("effnet_s")
    assert (effnet["phi"].spec["min"], effnet["phi"].spec["max"]) == (-13, -9)
    assert effnet["learning_rate"].spec["sampling"] == "log"
    assert effnet["mlp_width"].condition == ("global_features", (True,))


def test_hypermodel_declares_the_space_and_maps_values_to_trainer_settings():
    hm = get_hypermodel("effnet_s")
    hp = kt.HyperParameters()
    defaults = hm.build(hp)  # defaults: 002's S0 on 40 -> 32 crops, no global features
    assert defaults == {"model_options": {"phi": -13, "dropout_rate": 0.0}, "crop": 32, "learning_rate": 1e-3,
                        "global_features": False}
    assert {"phi", "crop", "dropout", "learning_rate", "global_features", "mlp_width", "mlp_depth"} <= {
        p.name for p in hp.space}

    with_features = hm.config_for({"phi": -10, "crop": 28, "dropout": 0.1, "learning_rate": 3e-3,
                                   "global_features": True, "mlp_width": 64, "mlp_depth": 3})
    assert with_features["model_options"] == {"phi": -10, "dropout_rate": 0.1, "mlp_units": [64, 64, 64]}
    # The MLP settings are inactive without global features and set nothing.
    without = hm.config_for({"phi": -10, "global_features": False, "mlp_width": 64, "mlp_depth": 3})
    assert "mlp_units" not in without["model_options"]

    ensemble = get_hypermodel("ensemble").config_for({"backbone_training": "frozen", "branches": "resnet50"})
    assert ensemble["model_options"] == {"trainable_backbone_layers": 0, "branches": "resnet50"}
    lenet = get_hypermodel("lenet").config_for({"conv1_filters": 8, "conv2_filters": 16, "dense_width": 40,
                                                "dense_layers": 2})
    assert lenet["model_options"] == {"filters": [8, 16], "dense_units": [40, 40]}

    merged = merge_config({"model_options": {"seed_like": 1}, "learning_rate": 1.0}, with_features)
    assert merged["model_options"]["seed_like"] == 1 and merged["learning_rate"] == 3e-3


def test_every_shipped_space_builds_its_model_at_the_defaults():
    import jettf.models as zoo

    for name in ("effnet_s", "lenet", "calo_cnn"):
        hm = get_hypermodel(name)
        config = hm.build(kt.HyperParameters())
        side = config.get("crop", 32)
        model = zoo.build(hm.space.model, 2, input_shape=(side, side, 3), **config["model_options"])
        assert model.output.shape[-1] == 2


BROKEN = [
    ({"model": "nope", "hyperparameters": {"a": {"type": "boolean", "default": True}}}, "model"),
    ({"model": "lenet"}, "hyperparameters"),
    ({"model": "lenet", "hyperparameters": {"dropout": {"type": "float", "min": 0.5, "max": 0.1, "default": 0.2}}},
     "hyperparameters.dropout.max"),
    ({"model": "lenet", "hyperparameters": {"dropout": {"type": "float", "min": 0, "max": 0.5, "default": 0.9}}},
     "hyperparameters.dropout.default"),
    ({"model": "lenet", "hyperparameters": {"dropout": {"type": "float", "min": 0, "max": "half", "default": 0}}},
     "hyperparameters.dropout.max"),
    ({"model": "lenet", "hyperparameters": {"x": {"type": "gaussian"}}}, "hyperparameters.x.type"),
    ({"model": "lenet", "hyperparameters": {"lr": {"type": "float", "min": 0.0, "max": 1.0, "default": 0.1,
                                                   "sampling": "log", "target": "learning_rate"}}},
     "hyperparameters.lr.min"),
    ({"model": "lenet", "hyperparameters": {"widht": {"type": "int", "min": 1, "max": 4, "default": 2}}},
     "hyperparameters.widht.target"),
    ({"model": "lenet", "hyperparameters": {"k": {"type": "choice", "values": [3, 5], "default": 7,
                                                  "target": "model_options.kernel_size"}}},
     "hyperparameters.k.default"),
    ({"model": "lenet", "hyperparameters": {"w": {"type": "int", "min": 1, "max": 4, "default": 2, "target": None,
                                                  "condition": {"global_features": [True]}}}},
     "hyperparameters.w.condition"),
    ({"model": "lenet", "hyperparameters": {"w": {"type": "int", "min": 1, "max": 4, "default": 2, "target": None}},
      "derived": {"model_options.dense_units": {"repeat": "w", "times": "depth"}}},
     "derived.model_options.dense_units"),
    ({"model": "lenet", "hyperparameters": {"a": {"type": "boolean", "default": True, "target": "global_features"}},
      "extra": 1}, "extra"),
]


@pytest.mark.parametrize("raw,key", BROKEN)
def test_space_errors_name_the_file_and_the_key(raw, key):
    with pytest.raises(ValueError) as err:
        parse_space(raw, "spaces/broken.yaml")
    message = str(err.value)
    assert message.startswith(f"broken.yaml: {key}"), message


def test_space_files_are_validated_on_load(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model: calo_cnn\nhyperparameters:\n  filters: {type: int, min: 8, max: 128, default: 4}\n")
    with pytest.raises(ValueError, match=r"mine.yaml: hyperparameters.filters.default"):
        load_space(path)
    path.write_text("model: calo_cnn\nhyperparameters:\n  learning_rate: {type: float, min: 1e-4, max: 1e-2, "
                    "default: 1e-3, sampling: log, target: learning_rate}\n")
    assert load_space(path)["learning_rate"].spec["min"] == pytest.approx(1e-4)  # YAML 1.1 "1e-4" is accepted
    with pytest.raises(ValueError, match="unknown hypermodel 'resnet9000'"):
        load_space("resnet9000")


def test_crop_choices_larger_than_the_images_are_dropped():
    space = load_space("effnet_s")
    space.restrict("crop", lambda v: v <= 35, "35x35 images")
    assert space["crop"].spec["values"] == [24, 28, 32]
    with pytest.raises(ValueError, match="crop: no value"):
        space.restrict("crop", lambda v: v <= 10, "10x10 images")


def test_objective_directions_and_oracles():
    from tuning.results import best_so_far
    from tuning.tuner import make_oracle, trial_metrics

    assert make_oracle("bayesian", "val_auc").objective.direction == "max"
    assert make_oracle("random", "val_loss").objective.direction == "min"
    hyperband = make_oracle("hyperband", "val_auc", max_trials=7, max_epochs=4)
    assert hyperband.max_trials == 7
    with pytest.raises(ValueError, match="--oracle"):
        make_oracle("grid")
    assert best_so_far([0.6, None, 0.7, 0.65], "max") == [0.6, 0.6, 0.7, 0.7]
    assert best_so_far([0.6, None, 0.7, 0.5], "min") == [0.6, 0.6, 0.6, 0.5]
    metrics = trial_metrics({"validation": {"auc_mean": 0.8, "accuracy": 0.5}, "val_loss": 0.4, "epochs": 3,
                             "params": 10}, 2.0)  # multiclass: the mean one-vs-rest AUC
    assert metrics == {"val_auc": 0.8, "val_loss": 0.4, "val_accuracy": 0.5, "epochs": 3.0, "params": 10.0,
                       "seconds": 2.0}
    assert math.isnan(trial_metrics({"validation": {"auc": None}}, 1.0)["val_auc"])


# ---------------------------------------------------------------- searches


def test_quick_search_end_to_end(data_dir, tmp_path):
    out = tmp_path / "quick"
    args = ["--hypermodel", "lenet", "--quick", "--n-jets", "20", "--data-dir", str(data_dir), "--out", str(out)]
    assert search.main(args) == 0

    rows = _read_rows(out)
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in rows)
    for r in rows:
        assert 0.0 <= float(r["val_auc"]) <= 1.0 and float(r["objective"]) == float(r["val_auc"])
        assert float(r["seconds"]) > 0 and int(float(r["params"])) > 0 and 1 <= float(r["epochs"]) <= 2
        assert r["hp:learning_rate"] and r["hp:crop"] in ("28", "32", "40")
    assert (out / "trials.md").read_text().count("COMPLETED") == 3
    assert (out / "objective.png").stat().st_size > 1000
    assert all(len(runs) == 1 for runs in _executions(out).values())

    # The best trial is the one with the highest validation AUC.
    best = json.loads((out / "best_trial.json").read_text())
    assert best["score"] == max(float(r["val_auc"]) for r in rows)
    values = best["hyperparameters"]

    # best_config.json is a --config file for python -m jettf.train.
    from jettf import train

    config, _ = train.resolve(train.parse_args(["--task", "binary", "--config", str(out / "best_config.json")]))
    assert config["model"] == "lenet" and config["dataset"] == "top_tagging_images/quick"
    assert config["learning_rate"] == pytest.approx(values["learning_rate"])
    assert config["crop"] == values["crop"] and config["global_features"] == values["global_features"]
    assert config["model_options"]["filters"] == [values["conv1_filters"], values["conv2_filters"]]
    assert config["model_options"]["dense_units"] == [values["dense_width"]] * values["dense_layers"]
    assert config["model_options"]["dropout"] == pytest.approx(values["dropout"])

    # The same command again finds the budget spent and trains nothing.
    assert search.main(args) == 0
    assert all(len(runs) == 1 for runs in _executions(out).values())
    # Other settings in the same folder are refused.
    with pytest.raises(SystemExit, match="different"):
        search.main([*args, "--oracle", "random"])


def test_interrupted_search_resumes_where_it_stopped(data_dir, tmp_path, monkeypatch):
    """Trial 1 is killed after its first epoch; rerunning continues it and adds only the new trial."""
    from jettf.training import loop

    out = tmp_path / "resume"
    args = ["--hypermodel", "calo_cnn", "--quick", *TINY, "--data-dir", str(data_dir), "--out", str(out)]
    original = loop._EpochCheckpoint.on_epoch_end

    def interrupt_trial_1(self, epoch, logs=None):
        original(self, epoch, logs)
        if "trial_1" in str(self.folder):
            raise KeyboardInterrupt("simulated kill after the first epoch of trial 1")

    monkeypatch.setattr(loop._EpochCheckpoint, "on_epoch_end", interrupt_trial_1)
    with pytest.raises(KeyboardInterrupt):
        search.main([*args, "--max-trials", "2"])
    monkeypatch.setattr(loop._EpochCheckpoint, "on_epoch_end", original)
    progress = json.loads((out / "keras_tuner" / "trial_1" / "run" / "checkpoints" / "fit" / "progress.json")
                          .read_text())
    assert progress["epoch"] == 1 and not progress["done"]

    assert search.main([*args, "--max-trials", "3"]) == 0
    runs = _executions(out)
    assert sorted(runs) == ["trial_0", "trial_1", "trial_2"]
    assert [len(runs[t]) for t in sorted(runs)] == [1, 2, 1]  # trial 0 kept, 1 continued, 2 new
    progress = json.loads((out / "keras_tuner" / "trial_1" / "run" / "checkpoints" / "fit" / "progress.json")
                          .read_text())
    assert progress["done"] and progress["epoch"] >= 2  # continued after epoch 1, not restarted
    assert [r["status"] for r in _read_rows(out)] == ["COMPLETED"] * 3

    # --resume alone continues with the saved settings (here: nothing left to do).
    assert search.main(["--resume", "--out", str(out)]) == 0
    assert [len(v) for v in _executions(out).values()] == [1, 2, 1]


def test_chief_and_two_workers_share_the_trials(data_dir, tmp_path):
    """One oracle (chief) and two workers as local processes on 127.0.0.1: every trial runs exactly once."""
    from tuning.distributed import launch_local, wait_all

    out = tmp_path / "sweep"
    n_trials = 4
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                                 os.environ.get("PYTHONPATH", "")]))
    args = ["--hypermodel", "lenet", "--quick", "--n-jets", "20", "--epochs", "1", "--max-trials", str(n_trials),
            "--oracle", "random", "--data-dir", str(data_dir), "--out", str(out)]
    procs = launch_local(args, workers=2, env=env, log_dir=tmp_path / "logs")
    try:
        codes = wait_all(procs, timeout=360)
    except Exception:
        for name in ("chief", "tuner0", "tuner1"):
            print(f"--- {name}.log", (tmp_path / "logs" / f"{name}.log").read_text()[-3000:], file=sys.stderr)
        raise
    logs = {p.stem: p.read_text() for p in (tmp_path / "logs").glob("*.log")}
    assert codes == [0, 0, 0], {k: v[-2000:] for k, v in logs.items()}

    rows = _read_rows(out)  # written by the chief from its oracle
    assert [r["trial"] for r in rows] == [str(i) for i in range(n_trials)]
    assert all(r["status"] == "COMPLETED" and r["val_auc"] for r in rows)
    runs = _executions(out)
    assert sorted(runs) == [f"trial_{i}" for i in range(n_trials)]
    assert all(len(v) == 1 for v in runs.values()), runs  # none ran twice
    workers = {v[0]["tuner_id"] for v in runs.values()}
    assert workers == {"tuner0", "tuner1"}, runs  # both workers got trials
    assert {r["worker"] for r in rows} == workers
    hp_columns = [c for c in rows[0] if c.startswith("hp:")]
    assert len({tuple(r[c] for c in hp_columns) for r in rows}) == n_trials  # distinct proposals
    assert (out / "best_config.json").exists() and (out / "objective.png").exists()
    assert "no more trials" in logs["tuner0"] and "no more trials" in logs["tuner1"]
