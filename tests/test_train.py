"""The training job: it learns, its run directory is complete, it resumes exactly after a kill.

``quick_run`` is the README's quickstart itself (``python -m jettf.train --task multiclass --quick``, Pythia
generation included), so the README's quick-run figures are checked here; the tools that read a run
(evaluate, explain, export) are run on it with default options.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from jettf import train
from jettf.training.run_dir import RunDir

TINY = ["--n-jets", "30", "--epochs", "2", "--n-boot", "20", "--batch-size", "32"]
#: The README's quick run: 5-class test accuracy "about 0.59" (chance 0.2). A model that learned nothing
#: from the images (labels decoupled from them) stays near 0.2 and a mean AUC near 0.5.
QUICK_MIN_ACCURACY, QUICK_MIN_AUC = 0.50, 0.80
#: LeNet + global features on 300 top / 300 QCD Pythia jets (002's setup, --quick): AUC ~0.97 measured.
TOP_MIN_AUC = 0.90


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One data directory for the module: each tiny dataset is generated and built once."""
    return tmp_path_factory.mktemp("train_data")


def _train(data_dir, out, *args):
    assert train.main([*args, *TINY, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return RunDir(out).read_metrics()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The README's quickstart, as a new user runs it (default options, ./data and ./runs under a fresh folder)."""
    home = tmp_path_factory.mktemp("quickstart")
    env = {k: v for k, v in os.environ.items() if k != "JETTF_DATA_DIR"}
    result = subprocess.run([sys.executable, "-m", "jettf.train", "--task", "multiclass", "--quick"], cwd=home,
                            env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((home / "runs").iterdir())
    assert len(runs) == 1 and (home / "data").is_dir()  # the one default data directory
    return {"home": home, "run": runs[0], "stderr": result.stderr, "stdout": result.stdout}


def test_quickstart_learns_and_writes_a_complete_run_directory(quick_run):
    out = quick_run["run"]
    metrics = RunDir(out).read_metrics()
    assert metrics["task"] == "multiclass" and metrics["classes"] == ["g", "q", "t", "w", "z"]
    test = metrics["test"]
    assert test["accuracy"] > QUICK_MIN_ACCURACY and test["auc_mean"] > QUICK_MIN_AUC, test
    assert len(metrics["folds"]) == 2 and set(metrics["folds_summary"]) >= {"accuracy", "auc_mean"}
    assert test["auc_mean"] == pytest.approx(np.mean(list(test["auc_per_class"].values())))
    assert np.sum(test["confusion_matrix"]) == test["n_jets"] == 1000
    assert np.trace(test["confusion_matrix"]) == round(test["accuracy"] * 1000)
    document = RunDir(out).read_config()
    assert document["config"]["quick"] and document["resolved"]["image_spec"]["npix"] == 32
    assert document["resolved"]["versions"]["keras"] == keras.__version__
    assert document["resolved"]["dataset_source"]["kind"] == "generated"
    for stage in ("fold_0", "fold_1", "final"):
        progress = json.loads((out / "checkpoints" / stage / "progress.json").read_text())
        assert progress["done"] and len(progress["history"]["loss"]) == 12
    # No error-looking noise on a CPU-only machine, and no spurious Keras warnings.
    noise = quick_run["stderr"] + quick_run["stdout"]
    for text in ("cuInit", "E0000", "absl::InitializeLog", "ran out of data", "Traceback"):
        assert text not in noise, text
    assert noise.count("splits: train") == 1  # the dataset it built is described once
    assert not (out / "preprocessing.npz").exists()  # the model carries its statistics


def test_report_tables_and_average_images_show_what_they_say(quick_run):
    from jettf.training.trainer import class_mean_images, prepare_data
    import jettf.data as jd

    out = quick_run["run"]
    report = (out / "report.md").read_text()
    assert "| figure | value | 95% bootstrap interval |" in report
    assert "e+0" not in report and "nan" not in report.lower()
    metrics = RunDir(out).read_metrics()
    assert f"| mean one-vs-rest AUC | {metrics['test']['auc_mean']:.4f} |" in report
    assert "from a sample generated with Pythia 8 + FastJet" in report
    for plot in ("roc.png", "rejection.png", "confusion_matrix.png", "training_curves.png", "average_images.png"):
        assert f"plots/{plot}" in report and (out / "plots" / plot).exists()
    # The average images are the per-class means of the rendered test images (pT_rel, before standardization),
    # two-dimensional, each class's mean image in its panel.
    config = RunDir(out).read_train_config()
    info = jd.load_info(config.dataset, str(quick_run["home"] / "data"))
    means = class_mean_images(prepare_data(config, info), "test")
    images, labels = [], []
    for x, y in jd.make_dataset(info, "test", batch_size=256, densify=True).as_numpy_iterator():
        images.append(x["image"])
        labels.append(y)
    images, labels = np.concatenate(images), np.concatenate(labels)
    for c, name in enumerate(info.class_names):
        np.testing.assert_allclose(means[name], images[labels == c].mean(axis=0), rtol=1e-4, atol=1e-7)
        assert means[name].min() >= 0 and means[name][16, 16, 0] > 10 * means[name][0, 0, 0]  # a core, not stripes


def test_evaluate_explain_and_export_work_on_the_quickstart_run_with_default_options(quick_run, tmp_path):
    home, out = quick_run["home"], quick_run["run"]
    env = {k: v for k, v in os.environ.items() if k != "JETTF_DATA_DIR"}
    for command in (["jettf.evaluate", str(out)], ["jettf.explain", str(out)], ["jettf.export", str(out)]):
        result = subprocess.run([sys.executable, "-m", *command], cwd=home, env=env, capture_output=True,
                                text=True, timeout=900)
        assert result.returncode == 0, (command, result.stderr[-3000:])
        assert "Traceback" not in result.stderr and "cuInit" not in result.stderr
    metrics = RunDir(out).read_metrics()
    evaluation = json.loads((out / "evaluation" / "jetnet_images-quick-test.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert evaluation["auc_mean"] == pytest.approx(metrics["test"]["auc_mean"], abs=1e-6)
    explained = json.loads((out / "explain" / "explain.json").read_text())
    assert set(explained["files"]) >= {"average_images", "difference_pt", "pearson", "gradcam", "ado_search"}
    report = (out / "report.md").read_text()
    assert report.count("## What the network learned") == 1 and "explain/gradcam.png" in report
    assert (home / "saved_models" / out.name / "1" / "saved_model.pb").exists()

    # Training the finished run again (a resume) re-evaluates it and keeps the explain section.
    result = subprocess.run([sys.executable, "-m", "jettf.train", "--resume", str(out)], cwd=home, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[final] already finished, skipping" in result.stdout
    assert (out / "report.md").read_text().count("## What the network learned") == 1


def test_binary_top_tagging_learns_with_global_features(data_dir, tmp_path):
    metrics = _train_args(["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet",
                           "--global-features", "--quick", "--n-boot", "20", "--data-dir", str(data_dir)],
                          tmp_path / "top")
    assert metrics["classes"] == ["qcd", "top"] and metrics["test"]["signal_class"] == "top"
    assert metrics["test"]["auc"] > TOP_MIN_AUC, metrics["test"]
    document = RunDir(tmp_path / "top").read_config()
    assert document["config"]["scheme"] == "rounds" and document["resolved"]["inputs"] == ["image", "global_features"]
    assert "tau32_b1" in document["resolved"]["feature_names"]


def test_same_seed_gives_the_same_metrics(data_dir, tmp_path, capsys):
    args = ["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
            "--scheme", "kfold", "--folds", "2", "--seed", "3"]
    first = _train(data_dir, tmp_path / "a", *args)
    second = _train(data_dir, tmp_path / "b", *args)
    assert first["test"] == second["test"] and first["folds"] == second["folds"]

    # A run directory is never silently reused for a different configuration.
    capsys.readouterr()
    assert train.main([*args, *TINY, "--data-dir", str(data_dir), "--out", str(tmp_path / "a"),
                       "--global-features"]) == 2
    assert "holds a run with different ['global_features']" in capsys.readouterr().err


def test_rounds_scheme_with_global_features_reweighting_and_mass_sculpting(data_dir, tmp_path):
    out = tmp_path / "rounds"
    metrics = _train(data_dir, out, "--task", "binary", "--dataset", "top_tagging_images/quick", "--model",
                     "effnet_s", "--global-features", "--quick", "--round-size", "20", "--patience", "1",
                     "--reweight", "pt,mass")
    progress = json.loads((out / "checkpoints" / "final" / "progress.json").read_text())
    schedule = progress["schedule"]
    assert schedule["position"] == len(schedule["history"]) > 1  # several rounds, each ended
    assert all(r["epochs"] <= 2 for r in schedule["history"])
    test = metrics["test"]
    assert 0.0 <= test["auc"] <= 1.0 and set(test["weighted"]) == {"accuracy", "auc", "rejection"}
    assert sum(test["mass_sculpting"]["before"]) == test["counts"]["qcd"]  # every background jet, before the cut
    report = (out / "report.md").read_text()
    assert "| figure | unweighted | weighted |" in report and "plots/mass_sculpting.png" in report
    assert "Trained with sample weights (--reweight pt,mass)" in report
    assert (out / "reweight.json").exists()
    # The figures are those of model.keras on the test jets: scikit-learn's AUC, unweighted and with the
    # stored weights (fitted on the training split) of the same jets.
    from sklearn.metrics import roc_auc_score

    from jettf.training import load_run
    from jettf.training.reweight import Reweighting

    tagger, _, data = load_run(out, "test")
    probs = tagger.predict({"image": data["images"], "global_features": data["global_features"]}, verbose=0)
    jets = data["jets"]
    jet = np.stack([jets.jet_pt, jets.jet_eta, jets.jet_phi, jets.jet_mass], axis=1)
    weights = Reweighting.from_dict(json.loads((out / "reweight.json").read_text())).weights(data["labels"], jet)
    top = metrics["classes"].index("top")
    is_top = data["labels"] == top
    assert test["auc"] == pytest.approx(roc_auc_score(is_top, probs[:, top]), abs=1e-5)
    assert test["weighted"]["auc"] == pytest.approx(roc_auc_score(is_top, probs[:, top], sample_weight=weights),
                                                    abs=1e-5)
    assert not np.allclose(weights, weights[0])  # the weights are not all one value: the check is not trivial
    # test_predictions.npz holds the same jets, probabilities and weights, in the same order.
    with np.load(RunDir(out).predictions_path) as saved:
        np.testing.assert_array_equal(saved["y"], data["labels"])
        np.testing.assert_allclose(saved["probs"], probs, atol=1e-5)
        np.testing.assert_allclose(saved["weight"], weights, rtol=1e-6)
        np.testing.assert_allclose(saved["jet"], jet, rtol=1e-6)
        assert list(saved["classes"]) == metrics["classes"]


def test_bad_options_print_one_clear_line(data_dir, tmp_path, capsys):
    assert train.main(["--task", "binary", "--dataset", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dataset: no preset for 'nope'" in err and "Traceback" not in err
    assert train.main(["--task", "multiclass", "--dataset", "top_tagging_images/quick", "--quick", *TINY,
                       "--data-dir", str(data_dir), "--out", str(tmp_path / "y")]) == 2
    assert "multiclass needs a dataset with 3+ classes" in capsys.readouterr().err
    with pytest.raises(ValueError, match="3\\+ classes"):  # --debug shows the traceback
        train.main(["--task", "multiclass", "--dataset", "top_tagging_images/quick", "--quick", *TINY,
                    "--data-dir", str(data_dir), "--out", str(tmp_path / "y"), "--debug"])


def _weights(out):
    return keras.models.load_model(out / "model.keras").get_weights()


def test_kill_and_resume_gives_the_same_weights_and_metrics(data_dir, tmp_path):
    """SIGKILL in the middle of training, then --resume: the same model and metrics as an uninterrupted run."""
    args = ["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
            "--scheme", "kfold", "--folds", "2", "--n-jets", "30", "--epochs", "4", "--n-boot", "10",
            "--batch-size", "16", "--data-dir", str(data_dir)]
    reference = _train_args(args, tmp_path / "reference")
    out = tmp_path / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "jettf.train", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress_file = out / "checkpoints" / "fold_1" / "progress.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if progress_file.exists() and json.loads(progress_file.read_text())["epoch"] >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(progress_file.read_text())["epoch"]
    assert 1 <= killed_at < 4
    result = subprocess.run([sys.executable, "-m", "jettf.train", "--resume", str(out)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[fold_0] already finished, skipping" in result.stdout
    assert f"[fold_1] resuming after epoch {killed_at}" in result.stdout
    for stage in ("fold_0", "fold_1", "final"):
        history = json.loads((out / "checkpoints" / stage / "progress.json").read_text())["history"]
        expected = json.loads((tmp_path / "reference" / "checkpoints" / stage / "progress.json").read_text())
        assert history["loss"] == expected["history"]["loss"]  # every epoch once, with the same numbers
    resumed = RunDir(out).read_metrics()
    assert resumed["test"] == reference["test"] and resumed["folds"] == reference["folds"]
    for a, b in zip(_weights(out), _weights(tmp_path / "reference")):
        np.testing.assert_array_equal(a, b)


def _train_args(args, out):
    assert train.main([*args, "--out", str(out)]) == 0
    return RunDir(out).read_metrics()


def test_seeds_are_aggregated_and_compared_with_a_t_test(data_dir, tmp_path):
    from scipy import stats

    from jettf.evaluate import compare_runs
    from jettf.utils import write_json

    args = ["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
            "--scheme", "kfold", "--folds", "2", "--epochs", "1", "--seeds", "2"]
    metrics = _train(data_dir, tmp_path / "lenet", *args)
    aucs = [s["auc"] for s in metrics["seeds"]]
    assert [s["seed"] for s in metrics["seeds"]] == [0, 1]
    assert metrics["test"]["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert metrics["test"]["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    for seed in (0, 1):
        assert (tmp_path / "lenet" / f"seed_{seed}" / "model.keras").exists()

    # Welch's t-test against another model's seeds (its metrics.json as --seeds writes it).
    other = [0.61, 0.67, 0.64]
    (tmp_path / "other").mkdir()
    write_json(tmp_path / "other" / "metrics.json", {"seeds": [{"seed": i, "auc": a} for i, a in enumerate(other)]})
    result = compare_runs(tmp_path / "lenet", tmp_path / "other")
    expected = stats.ttest_ind(aucs, other, equal_var=False)
    assert result["auc"]["t"] == pytest.approx(expected.statistic)
    assert result["auc"]["p"] == pytest.approx(expected.pvalue)
