"""Evaluate a trained run: ``python -m jettf.evaluate RUN_DIR [--dataset NAME/CONFIG] [--split test]``.

Re-computes the physics metrics of a run's model on a dataset split (by
default the run's own test split; another dataset must have the same classes),
with the same input preparation as training, and writes them to
``RUN_DIR/evaluation/<dataset>-<split>.json`` with ROC and rejection plots.

``python -m jettf.evaluate --compare RUN_A RUN_B`` compares two multi-seed
runs (``--seeds N``) with Welch's t-test on the test AUC and accuracy, as in
000's stability analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["evaluate_run", "compare_runs", "main"]


def evaluate_run(run_dir, dataset=None, split="test", data_dir=None, n_boot=None) -> dict:
    """Metrics of a run's model on ``dataset``/``split`` (default: the run's own test split)."""
    import keras

    import jettf.models  # noqa: F401 - registers the custom layers for loading
    from jettf import metrics as jm
    from jettf import plots
    from jettf.training.run_dir import RunDir
    from jettf.training.trainer import _prepare_data, inference_ms_per_100, predict
    from jettf.utils import write_json

    run = RunDir(run_dir)
    config = run.read_config()
    eval_config = {**config, "dataset": dataset or config["dataset"], "data_dir": data_dir or config["data_dir"]}
    data = _prepare_data(eval_config, log=lambda m: print(m, file=sys.stderr))
    if data.class_names != config["class_names"]:
        raise ValueError(
            f"{eval_config['dataset']}: classes {data.class_names} differ from the run's {config['class_names']}")
    model = keras.models.load_model(run.model_path)
    ds = data.dataset(split, training=False)
    y, probs = predict(model, ds)
    result = jm.evaluate_predictions(y, probs, data.class_names, signal_class=config.get("signal"),
                                     n_boot=config["n_boot"] if n_boot is None else n_boot, seed=config["seed"])
    result.update(dataset=eval_config["dataset"], split=split, model=config["model"],
                  inference_ms_per_100_jets=inference_ms_per_100(model, ds), params=int(model.count_params()))
    stem = f"{eval_config['dataset'].replace('/', '-')}-{split}"
    out = run.path / "evaluation"
    write_json(out / f"{stem}.json", result)
    plots.plot_roc(y, probs, data.class_names, out / f"{stem}-roc.png", signal_class=config.get("signal"))
    plots.plot_rejection(y, probs, data.class_names, out / f"{stem}-rejection.png",
                         signal_class=config.get("signal"))
    return result


def _seed_values(run_dir, key: str) -> list:
    from jettf.training.run_dir import RunDir

    metrics = RunDir(run_dir).read_metrics()
    if "seeds" not in metrics:
        raise ValueError(f"{run_dir}: a single-seed run; train with --seeds N (N >= 2) to compare seeds")
    return [s[key] for s in metrics["seeds"] if key in s]


def compare_runs(run_a, run_b) -> dict:
    """Welch's t-test between two multi-seed runs on each shared test figure."""
    from jettf import metrics as jm

    out = {}
    for key in ("accuracy", "auc", "auc_mean"):
        a, b = _seed_values(run_a, key), _seed_values(run_b, key)
        if a and b:
            out[key] = jm.compare_seeds(a, b)
    if not out:
        raise ValueError(f"{run_a} and {run_b} share no test figure to compare")
    return out


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    p = argparse.ArgumentParser(prog="python -m jettf.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, nargs="?", help="a run directory of python -m jettf.train")
    p.add_argument("--dataset", help="NAME/CONFIG to evaluate on (default: the run's dataset)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir")
    p.add_argument("--n-boot", type=int)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
                   help="t-test between two multi-seed runs")
    args = p.parse_args(argv)
    if args.compare:
        result = compare_runs(*args.compare)
    elif args.run_dir is None:
        p.error("give RUN_DIR or --compare RUN_A RUN_B")
    else:
        result = evaluate_run(args.run_dir, args.dataset, args.split, args.data_dir, args.n_boot)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
