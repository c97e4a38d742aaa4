"""The training job: run directory contents, schemes, determinism, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from jettf import train
from jettf.training.run_dir import RunDir

TINY = ["--n-jets", "30", "--epochs", "2", "--n-boot", "20", "--batch-size", "32"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One data directory for the module: each tiny dataset is generated and built once."""
    return tmp_path_factory.mktemp("train_data")


def _train(data_dir, out, *args):
    assert train.main([*args, *TINY, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return RunDir(out).read_metrics()


def test_quick_multiclass_writes_a_complete_run_directory(data_dir, tmp_path):
    out = tmp_path / "run"
    metrics = _train(data_dir, out, "--task", "multiclass", "--quick", "--folds", "2")

    assert metrics["task"] == "multiclass" and metrics["classes"] == ["g", "q", "t", "w", "z"]
    assert len(metrics["folds"]) == 2 and set(metrics["folds_summary"]) >= {"accuracy", "auc_mean"}
    test = metrics["test"]
    assert set(test["auc_per_class"]) == {"g", "q", "t", "w", "z"}
    assert test["auc_mean"] == pytest.approx(np.mean(list(test["auc_per_class"].values())))
    assert np.asarray(test["confusion_matrix"]).shape == (5, 5)
    assert np.sum(test["confusion_matrix"]) == test["n_jets"]
    assert metrics["params"] > 0 and metrics["inference_ms_per_100_jets"] > 0 and metrics["train_images_per_s"] > 0

    config = RunDir(out).read_config()
    assert config["image_spec"]["npix"] == 32 and config["dataset_fingerprint"]
    assert config["versions"]["keras"] == keras.__version__
    report = (out / "report.md").read_text()
    for plot in ("roc.png", "rejection.png", "confusion_matrix.png", "training_curves.png", "average_images.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
        assert f"plots/{plot}" in report
    for stage in ("fold_0", "fold_1", "final"):
        progress = json.loads((out / "checkpoints" / stage / "progress.json").read_text())
        assert progress["done"] and len(progress["history"]["loss"]) == 2
        assert (out / "logs" / stage / "history.csv").exists()

    # The saved model reproduces the test metrics through jettf.evaluate.
    from jettf.evaluate import evaluate_run

    again = evaluate_run(out, n_boot=0)
    assert again["accuracy"] == pytest.approx(test["accuracy"])
    assert again["auc_mean"] == pytest.approx(test["auc_mean"], abs=1e-6)

    # jettf.explain reads the run through jettf.training.load_run and adds a report section.
    from jettf.explain.__main__ import main as explain_main

    assert explain_main([str(out), "--gradcam-jets", "4", "--max-steps", "1", "--efp-dmax", "2"]) == 0
    assert (out / "explain" / "gradcam.png").exists() and (out / "explain" / "ado_search.md").exists()
    report = (out / "report.md").read_text()
    assert report.count("## What the network learned") == 1 and "explain/gradcam.png" in report


def test_same_seed_gives_the_same_metrics(data_dir, tmp_path):
    args = ["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
            "--scheme", "kfold", "--folds", "2", "--seed", "3"]
    first = _train(data_dir, tmp_path / "a", *args)
    second = _train(data_dir, tmp_path / "b", *args)
    assert first["classes"] == ["qcd", "top"] and first["test"]["signal_class"] == "top"
    assert first["test"] == second["test"]
    assert first["folds"] == second["folds"]

    # A run directory is never silently reused for a different configuration.
    with pytest.raises(ValueError, match=r"holds a run with different \['global_features'\]"):
        _train(data_dir, tmp_path / "a", *args, "--global-features")


def test_rounds_scheme_with_global_features(data_dir, tmp_path):
    out = tmp_path / "rounds"
    metrics = _train(data_dir, out, "--task", "binary", "--dataset", "top_tagging_images/quick", "--model",
                     "effnet_s", "--global-features", "--quick", "--round-size", "20", "--patience", "1")
    config = RunDir(out).read_config()
    assert config["scheme"] == "rounds" and config["inputs"] == ["image", "global_features"]
    assert config["feature_names"] and "tau32_b1" in config["feature_names"]
    progress = json.loads((out / "checkpoints" / "final" / "progress.json").read_text())
    schedule = progress["schedule"]
    assert schedule["position"] == len(schedule["history"]) > 1  # several rounds, each ended
    assert all(r["epochs"] <= 2 for r in schedule["history"])
    assert 0.0 <= metrics["test"]["auc"] <= 1.0


def test_bad_options_are_named(data_dir, tmp_path):
    with pytest.raises(ValueError, match="--dataset: unknown dataset 'nope'"):
        train.main(["--task", "binary", "--dataset", "nope", "--out", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="multiclass needs a dataset with 3\\+ classes"):
        _train(data_dir, tmp_path / "y", "--task", "multiclass", "--dataset", "top_tagging_images/quick", "--quick")


def test_resume_after_kill_continues_without_redoing_epochs(data_dir, tmp_path):
    out = tmp_path / "killed"
    # Build the dataset first so the kill lands during training.
    _train(data_dir, tmp_path / "warm", "--task", "binary", "--dataset", "top_tagging_images/quick", "--model",
           "lenet", "--quick", "--scheme", "kfold", "--folds", "2")
    cmd = [sys.executable, "-m", "jettf.train", "--task", "binary", "--dataset", "top_tagging_images/quick",
           "--model", "lenet", "--quick", "--scheme", "kfold", "--folds", "2", *TINY[:2], "--epochs", "4",
           "--n-boot", "0", "--batch-size", "32", "--data-dir", str(data_dir), "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress_file = out / "checkpoints" / "fold_1" / "progress.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if progress_file.exists() and json.loads(progress_file.read_text())["epoch"] >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(progress_file.read_text())["epoch"]
    assert 1 <= killed_at < 4
    assert not list(out.rglob("*.tmp*")) or all(p.name.startswith(".") for p in out.rglob("*.tmp*"))

    result = subprocess.run([sys.executable, "-m", "jettf.train", "--resume", str(out)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[fold_0] already finished, skipping" in result.stdout
    assert f"[fold_1] resuming after epoch {killed_at}" in result.stdout
    for stage in ("fold_0", "fold_1", "final"):
        history = json.loads((out / "checkpoints" / stage / "progress.json").read_text())["history"]
        assert len(history["loss"]) == 4  # every epoch once: none lost, none redone
    assert "accuracy" in RunDir(out).read_metrics()["test"]


def test_seeds_are_aggregated_and_compared_with_a_t_test(data_dir, tmp_path):
    from scipy import stats

    from jettf.evaluate import compare_runs

    args = ["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
            "--scheme", "kfold", "--folds", "2", "--epochs", "1", "--seeds", "2"]
    metrics = _train(data_dir, tmp_path / "lenet", *args)
    aucs = [s["auc"] for s in metrics["seeds"]]
    assert [s["seed"] for s in metrics["seeds"]] == [0, 1]
    assert metrics["test"]["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert metrics["test"]["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    for seed in (0, 1):
        assert (tmp_path / "lenet" / f"seed_{seed}" / "model.keras").exists()

    other = _train(data_dir, tmp_path / "deeptop", *args[:5], "deeptop", *args[6:])
    result = compare_runs(tmp_path / "lenet", tmp_path / "deeptop")
    expected = stats.ttest_ind(aucs, [s["auc"] for s in other["seeds"]], equal_var=False)
    assert result["auc"]["t"] == pytest.approx(expected.statistic)
    assert result["auc"]["p"] == pytest.approx(expected.pvalue)
