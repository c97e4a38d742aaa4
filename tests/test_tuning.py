"""Hyperparameter sweeps: hypermodels, oracles, a sweep end to end, its printed command, kill -9 and resume,
chief + workers."""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pytest

from tuning import search
from tuning.hypermodels import HYPERMODELS, get_hypermodel, trial_config

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

#: A user's own space, as tuning/README.md shows it: a small calo_cnn (fast trials) with dropout, so resumed
#: trials must also restore the random masks.
TINY_SPACE = '''
def tiny(hp):
    """Learning rate, filters, units and dropout of a one-block calo_cnn on 16x16 centre crops."""
    return {
        "model": "calo_cnn",
        "crop": 16,
        "learning_rate": hp.Float("learning_rate", 1e-3, 1e-2, sampling="log", default=3e-3),
        "model_options": {"conv_blocks": 1, "dense_layers": 1,
                          "filters": hp.Int("filters", 4, 8, step=4, default=4),
                          "units": hp.Int("units", 8, 32, step=8, default=16),
                          "dropout": hp.Float("dropout", 0.0, 0.5, default=0.2)},
    }


tiny.dataset = "top_tagging_images"
'''
#: Each trial: 3 epochs (patience 3 cannot stop it early) on 20 jets per class.
TRIAL = ["--quick", "--n-jets", "20", "--epochs", "3", "--patience", "3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The tiny generated top-tagging dataset, built once for the module."""
    import jettf.data as jd

    folder = tmp_path_factory.mktemp("tuning_data")
    jd.build("top_tagging_images/quick", data_dir=str(folder), n_jets=20)
    return folder


@pytest.fixture(scope="module")
def tiny_space(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("spaces") / "my_spaces.py"
    path.write_text(TINY_SPACE)
    return f"{path}:tiny"


def _read_rows(out: Path) -> list:
    with open(out / "trials.csv") as f:
        return list(csv.DictReader(f))


def _executions(out: Path) -> dict:
    return {p.parent.name: [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted((out / "keras_tuner").glob("trial_*/executions.jsonl"))}


def _base_config(**overrides):
    from jettf.training.config import resolve

    return resolve(task="binary", quick=True, dataset="top_tagging_images", **overrides)


# ---------------------------------------------------------------- command line


def test_help_answers_without_loading_tensorflow():
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tuning.search", "--help"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=60)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert "--hypermodel" in done.stdout and "--learning-rate" in done.stdout and "--retrain" in done.stdout
    assert set(search.SHIPPED) == set(HYPERMODELS) and all(name in done.stdout for name in HYPERMODELS)
    probe = subprocess.run([sys.executable, "-c", "import sys, tuning.search as s\ntry:\n    s.parse_args(['-h'])\n"
                            "except SystemExit:\n    pass\nprint(sorted(m for m in ('tensorflow', 'keras', "
                            "'keras_tuner') if m in sys.modules))"], cwd=ROOT, env=ENV, capture_output=True,
                           text=True, timeout=60)
    assert probe.stdout.strip().splitlines()[-1] == "[]", probe.stdout
    assert seconds < 10, f"--help took {seconds:.1f} s"  # ~0.5 s on an idle machine; generous for a loaded one


# ---------------------------------------------------------------- hypermodels


def test_shipped_hypermodels_declare_the_papers_ranges():
    from jettf.models.calo_cnn import SEARCH_SPACE

    hp = kt.HyperParameters()
    calo = get_hypermodel("calo_cnn").build(hp)
    assert calo == {"model": "calo_cnn", "learning_rate": 1e-4, "model_options": {  # 004 Table 3.5, ECAL
        "conv_blocks": 3, "filters": 117, "dense_layers": 2, "units": 160, "dropout": 0.0}}
    declared = {p.name: p for p in hp.space}
    for name, (low, high) in SEARCH_SPACE.items():  # 004 Table 3.3, the one place it is written down
        assert (declared[name].min_value, declared[name].max_value) == (low, high), name
    assert declared["learning_rate"].sampling == "log"

    from jettf.models.dense import SEARCH_SPACE as TABLE_3_4

    hp = kt.HyperParameters()
    dense = get_hypermodel("dense").build(hp)  # 004 Table 3.5's HL network, on the global features only
    assert dense == {"model": "dense", "learning_rate": 1e-3, "global_features": True,
                     "model_options": {"dense_layers": 5, "units": 149, "dropout": 0.0019}}
    declared = {p.name: p for p in hp.space}
    for name, (low, high) in TABLE_3_4.items():
        assert (declared[name].min_value, declared[name].max_value) == (low, high), name
    assert get_hypermodel("dense").dataset == get_hypermodel("calo_cnn").dataset == "electron_images"

    hp = kt.HyperParameters()
    assert get_hypermodel("effnet_s").build(hp) == {  # 002's S0 on 40 -> 32 crops, no global features
        "model": "effnet_s", "crop": 32, "learning_rate": 1e-3, "global_features": False,
        "model_options": {"phi": -13, "dropout_rate": 0.0}}
    declared = {p.name: p for p in hp.space}
    assert (declared["phi"].min_value, declared["phi"].max_value) == (-13, -9)
    assert declared["learning_rate"].sampling == "log" and list(declared["crop"].values) == [24, 28, 32, 36, 40]
    assert [(c.name, list(c.values)) for c in declared["mlp_width"].conditions] == [("global_features", [True])]

    hp = kt.HyperParameters()
    hp.values.update(global_features=True, mlp_width=64, mlp_depth=3, phi=-10)
    with_features = get_hypermodel("effnet_s").build(hp)
    assert with_features["model_options"] == {"phi": -10, "dropout_rate": 0.0, "mlp_units": [64, 64, 64]}

    hp = kt.HyperParameters()
    hp.values.update(backbone_training="frozen", branches="resnet50")
    assert get_hypermodel("ensemble", quick=True).build(hp)["model_options"] == {
        "fusion_units": 512, "dropout": 0.5, "trainable_backbone_layers": 0, "branches": "resnet50",
        "resnet50_input_size": None}
    hp = kt.HyperParameters()
    hp.values.update(conv1_filters=8, conv2_filters=16, dense_width=40, dense_layers=2)
    assert get_hypermodel("lenet").build(hp)["model_options"] == {"filters": [8, 16], "kernel_size": 5,
                                                                  "dense_units": [40, 40], "dropout": 0.0}

    # Crops larger than the dataset's images are not proposed.
    hp = kt.HyperParameters()
    assert get_hypermodel("effnet_s", image_side=35).build(hp)["crop"] == 32
    assert list({p.name: p for p in hp.space}["crop"].values) == [24, 28, 32]
    with pytest.raises(ValueError, match="crop: no value of .* fits the 10x10 images"):
        get_hypermodel("effnet_s", image_side=10).build(kt.HyperParameters())


def test_shipped_hypermodels_build_their_models_at_the_defaults():
    import jettf.models as zoo

    for name in ("effnet_s", "lenet", "calo_cnn"):
        config = trial_config(_base_config(), get_hypermodel(name).build(kt.HyperParameters()))
        side = config.crop if isinstance(config.crop, int) else round(40 * config.crop)  # 40 px images
        model = zoo.build(config.model, 2, input_shape=(side, side, 3), **config.model_options)
        assert model.output.shape[-1] == 2


def test_user_hypermodels_and_errors_name_the_setting(tiny_space, tmp_path):
    hm = get_hypermodel(tiny_space)
    assert hm.dataset == "top_tagging_images" and hm.name == "tiny"
    config = trial_config(_base_config(model="lenet"), hm.build(kt.HyperParameters()), where="hypermodel tiny")
    assert config.model == "calo_cnn" and config.crop == 16 and config.model_options["units"] == 16

    with pytest.raises(ValueError, match=r"hypermodel tiny: unknown setting\(s\) \['lerning_rate'\]"):
        trial_config(_base_config(), {"lerning_rate": 0.1}, where="hypermodel tiny")
    with pytest.raises(ValueError, match=r"hypermodel tiny: model_options \['widht'\] are not options of "
                                         r"jettf.models 'lenet'"):
        trial_config(_base_config(model="lenet"), {"model_options": {"widht": 3}}, where="hypermodel tiny")
    with pytest.raises(ValueError, match="--hypermodel 'resnet9000': expected one of"):
        get_hypermodel("resnet9000")
    with pytest.raises(ValueError, match="defines no 'nope'"):
        get_hypermodel(tiny_space.replace(":tiny", ":nope"))
    with pytest.raises(FileNotFoundError, match="no file"):
        get_hypermodel(str(tmp_path / "missing.py") + ":tiny")


# ---------------------------------------------------------------- oracles and results


def test_objective_directions_and_oracles():
    from tuning.results import best_so_far
    from tuning.tuner import make_oracle, trial_metrics

    assert make_oracle("bayesian", "val_auc").objective.direction == "max"
    assert make_oracle("random", "val_loss").objective.direction == "min"
    assert make_oracle("hyperband", "val_auc", max_trials=7, max_epochs=4).max_trials == 7
    with pytest.raises(ValueError, match="--oracle"):
        make_oracle("grid")
    assert best_so_far([0.6, None, 0.7, 0.65], "max") == [0.6, 0.6, 0.7, 0.7]
    assert best_so_far([0.6, None, 0.7, 0.5], "min") == [0.6, 0.6, 0.6, 0.5]
    metrics = trial_metrics({"validation": {"auc_mean": 0.8, "accuracy": 0.5}, "val_loss": 0.4, "epochs": 3,
                             "params": 10}, 2.0)  # multiclass: the mean one-vs-rest AUC
    assert metrics == {"val_auc": 0.8, "val_loss": 0.4, "val_accuracy": 0.5, "epochs": 3.0, "params": 10.0,
                       "seconds": 2.0}
    assert math.isnan(trial_metrics({"validation": {"auc": None}}, 1.0)["val_auc"])


def test_bayesian_search_reloaded_proposes_what_an_uninterrupted_one_does(tmp_path):
    """keras-tuner neither saves the optimizer's random state nor keeps the trials' order on reload; ours does."""
    from tuning.tuner import make_oracle

    def space(hp):
        hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
        hp.Int("units", 1, 200)
        hp.Float("dropout", 0.0, 0.5)
        return {}

    class Scored(kt.engine.base_tuner.BaseTuner):
        def run_trial(self, trial):
            v = trial.hyperparameters.values
            return {"val_auc": v["dropout"] - (math.log10(v["learning_rate"]) + 2.5) ** 2 - (v["units"] / 100 - 1) ** 2}

        def save_model(self, *args, **kwargs):
            pass

    def search_to(directory, n):
        tuner = Scored(make_oracle("bayesian", "val_auc", n, seed=0, initial_points=1), space,
                       directory=str(directory), project_name="p")
        tuner.oracle.verbose, tuner.oracle.max_trials = 0, n
        tuner.search()
        return [tuner.oracle.trials[t].hyperparameters.values for t in sorted(tuner.oracle.trials)]

    uninterrupted = search_to(tmp_path / "a", 3)
    search_to(tmp_path / "b", 2)  # stops after a Gaussian-process proposal, then continues in a new tuner
    assert search_to(tmp_path / "b", 3) == uninterrupted


def test_objective_plot_draws_each_trial_and_the_best_so_far():
    import matplotlib.pyplot as plt

    from tuning.results import objective_figure

    rows = [{"trial": "0", "val_loss": 0.6}, {"trial": "1", "val_loss": None}, {"trial": "2", "val_loss": 0.5},
            {"trial": "3", "val_loss": 0.7}]
    fig = objective_figure(rows, "val_loss", "min")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"trial", "best so far", "failed"}
    assert list(lines["trial"].get_xdata()) == [0, 2, 3] and list(lines["trial"].get_ydata()) == [0.6, 0.5, 0.7]
    assert list(lines["best so far"].get_xdata()) == [0, 1, 2, 3]
    assert list(lines["best so far"].get_ydata()) == [0.6, 0.6, 0.5, 0.5]  # lower is better
    assert list(lines["failed"].get_xdata()) == [1]
    assert ax.get_ylabel() == "validation loss (lower is better)" and ax.get_xlabel().startswith("trial id")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trial", "best so far", "failed"]
    plt.close(fig)


# ---------------------------------------------------------------- sweeps


@pytest.fixture(scope="module")
def sweeps(data_dir, tiny_space, tmp_path_factory):
    """The sweeps of this module, as the command line runs them, started together (they mostly wait for CPU):

    - the same 2-trial Bayesian sweep twice: once uninterrupted (``reference``), once killed with SIGKILL in
      the middle of trial 1 and then run again (``killed``); this fixture returns when both have finished;
    - a chief and two workers sharing a 4-trial random search (``distributed``: still running on return).
    """
    from tuning.distributed import launch_local

    root = tmp_path_factory.mktemp("sweeps")
    args = ["--hypermodel", tiny_space, *TRIAL, "--max-trials", "2", "--initial-points", "1",
            "--data-dir", str(data_dir)]

    def start(out: Path, log: str):
        with open(root / log, "w") as f:  # the child keeps its own handle
            return subprocess.Popen([sys.executable, "-m", "tuning.search", *args, "--out", str(out)], cwd=ROOT,
                                    env=ENV, stdout=f, stderr=subprocess.STDOUT)

    reference, killed = start(root / "reference", "reference.log"), start(root / "killed", "killed.log")
    distributed = launch_local(
        ["--hypermodel", tiny_space, "--quick", "--n-jets", "20", "--epochs", "1", "--max-trials", "4",
         "--oracle", "random", "--data-dir", str(data_dir), "--out", str(root / "distributed")],
        workers=2, env=dict(ENV, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1"),
        log_dir=root / "distributed_logs")
    try:
        progress = root / "killed" / "keras_tuner" / "trial_1" / "run" / "checkpoints" / "fit" / "progress.json"
        deadline = time.monotonic() + 300
        while not (progress.exists() and json.loads(progress.read_text())["epoch"] >= 1):
            assert killed.poll() is None, (root / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "trial 1 did not finish an epoch in 300 s"
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)  # during trial 1's second epoch
        killed.wait()
        at_kill = json.loads(progress.read_text())
        resumed = start(root / "killed", "resumed.log")
        codes = [reference.wait(timeout=300), resumed.wait(timeout=300)]
    except BaseException:
        for proc in [reference, killed, *distributed]:
            if proc.poll() is None:
                proc.kill()
        raise
    logs = {name: (root / f"{name}.log").read_text() for name in ("reference", "killed", "resumed")}
    assert codes == [0, 0], {k: v[-3000:] for k, v in logs.items()}
    yield {"reference": root / "reference", "killed": root / "killed", "at_kill": at_kill, "logs": logs,
           "args": args, "distributed": (distributed, root / "distributed", root / "distributed_logs")}
    for proc in distributed:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _trial_model(out: Path, trial: str):
    import keras

    import jettf.images.preparation  # noqa: F401
    import jettf.models  # noqa: F401

    return keras.models.load_model(out / "keras_tuner" / trial / "run" / "checkpoints" / "fit" / "best.keras")


def _trial_weights(out: Path, trial: str) -> list:
    return [np.asarray(w) for w in _trial_model(out, trial).get_weights()]


def _validation_auc(trial: Path) -> float:
    """scikit-learn's ROC AUC of a trial's kept model (lowest validation loss) on its validation split."""
    from sklearn.metrics import roc_auc_score

    from jettf.training import run_dataset
    from jettf.training.run_dir import RunDir
    from jettf.training.trainer import predict

    config, data = run_dataset(trial / "run")
    split = RunDir(trial / "run").read_config()["resolved"]["validation_split"]
    y, probs = predict(_trial_model(trial.parent.parent, trial.name), data.dataset(split, training=False))
    signal = data.class_names.index(config.signal)
    return float(roc_auc_score(y == signal, probs[:, signal]))


def test_kill_9_during_a_trial_then_resume_gives_the_uninterrupted_sweep(sweeps):
    assert sweeps["at_kill"]["epoch"] == 1 and not sweeps["at_kill"]["done"], "killed after the trial ended"
    assert "resuming after epoch 1" in sweeps["logs"]["resumed"]
    runs = _executions(sweeps["killed"])
    assert [len(runs[t]) for t in ("trial_0", "trial_1")] == [1, 2]  # trial 0 kept, trial 1 continued
    for trial in ("trial_0", "trial_1"):
        a, b = (json.loads((sweeps[k] / "keras_tuner" / trial / "result.json").read_text())
                for k in ("reference", "killed"))
        assert a["hyperparameters"] == b["hyperparameters"]
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=1e-6)
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert len(a["history"][key]) == 3
            np.testing.assert_allclose(b["history"][key], a["history"][key], rtol=0, atol=1e-6, err_msg=key)
        assert b["metrics"]["val_auc"] == pytest.approx(a["metrics"]["val_auc"], abs=1e-6)
        for wa, wb in zip(_trial_weights(sweeps["reference"], trial), _trial_weights(sweeps["killed"], trial)):
            np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-6)
    keep = ("trial", "status", "objective", "val_auc", "val_loss")
    assert [{k: r[k] for k in keep} for r in _read_rows(sweeps["killed"])] == \
        [{k: r[k] for k in keep} for r in _read_rows(sweeps["reference"])]


def test_sweep_outputs_and_the_printed_command_trains_the_best_trial(sweeps, capsys):
    from jettf import train
    from jettf.training.run_dir import RunDir

    out = sweeps["reference"]
    rows = _read_rows(out)
    assert [r["trial"] for r in rows] == ["0", "1"] and all(r["status"] == "COMPLETED" for r in rows)
    for r in rows:
        assert 0.0 <= float(r["val_auc"]) <= 1.0 and float(r["objective"]) == float(r["val_auc"])
        assert float(r["seconds"]) > 0 and int(float(r["params"])) > 0 and float(r["epochs"]) == 3
        assert {"learning_rate", "filters", "units", "dropout"} <= {c.removeprefix("hp:") for c in r}
        # The reported val_auc is scikit-learn's AUC of the trial's kept model on its validation jets.
        assert float(r["val_auc"]) == pytest.approx(_validation_auc(out / "keras_tuner" / f"trial_{r['trial']}"),
                                                    abs=1e-5)
    assert (out / "trials.md").read_text().count("COMPLETED") == 2 and (out / "objective.png").exists()
    best = json.loads((out / "best_trial.json").read_text())
    assert best["score"] == max(float(r["val_auc"]) for r in rows)

    # best_config.json is the best trial's complete TrainConfig, the one its trial trained with.
    best_config = json.loads((out / "best_config.json").read_text())
    trial_run = RunDir(out / "keras_tuner" / f"trial_{best['trial_id']}" / "run")
    assert best_config == trial_run.read_config()["config"]
    assert best_config["dataset"] == "top_tagging_images/quick-n20" and best_config["n_jets"] == 20
    assert best_config["quick"] is True and best_config["model"] == "calo_cnn" and best_config["epochs"] == 3
    assert best_config["learning_rate"] == best["hyperparameters"]["learning_rate"]
    assert best_config["model_options"]["units"] == best["hyperparameters"]["units"]

    # The command printed last works as printed and trains exactly that configuration.
    printed = sweeps["logs"]["reference"].strip().splitlines()[-1]
    assert printed.startswith("[tuning] train it: python -m jettf.train --config ")
    command = printed.split("train it: ", 1)[1]
    assert command == best["train_with"] and "--out" in command
    assert train.main(shlex.split(command)[3:]) == 0
    run_dir = RunDir(out / f"train-trial_{best['trial_id']}")
    assert run_dir.read_config()["config"] == best_config and run_dir.metrics_path.exists()

    # The same search again: the budget is spent, nothing trains; --retrain finds the trained run finished.
    argv = [*sweeps["args"], "--out", str(out)]
    capsys.readouterr()
    assert search.main([*argv, "--retrain"]) == 0
    assert [len(v) for v in _executions(out).values()] == [1, 1]
    assert "[final] already finished" in capsys.readouterr().err
    # Other settings in the same folder are refused in one line.
    assert search.main([*argv, "--oracle", "random"]) == 2
    assert "holds a search with different ['oracle']" in capsys.readouterr().err


def test_chief_and_two_workers_share_the_trials(sweeps):
    """One oracle (chief) and two workers as local processes on 127.0.0.1: every trial runs exactly once."""
    from tuning.distributed import wait_all

    procs, out, log_dir = sweeps["distributed"]
    n_trials = 4
    try:
        codes = wait_all(procs, timeout=360)
    except Exception:
        for name in ("chief", "tuner0", "tuner1"):
            print(f"--- {name}.log", (log_dir / f"{name}.log").read_text()[-3000:], file=sys.stderr)
        raise
    logs = {p.stem: p.read_text() for p in log_dir.glob("*.log")}
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
