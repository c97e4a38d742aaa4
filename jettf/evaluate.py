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
import sys
from pathlib import Path

__all__ = ["evaluate_run", "compare_runs", "main"]


def evaluate_run(run_dir, dataset=None, split="test", data_dir=None, n_boot=None) -> dict:
    """Metrics of a run's model on ``dataset``/``split`` (default: the run's own test split; never builds data)."""
    import jettf.models as zoo
    from jettf import metrics as jm
    from jettf import plots
    from jettf.training import load_tagger, run_dataset
    from jettf.training.run_dir import RunDir
    from jettf.training.trainer import inference_ms_per_100, predict, training_model
    from jettf.utils import write_json

    config, data = run_dataset(run_dir, dataset, data_dir)
    tagger = load_tagger(run_dir)
    model = training_model(tagger, data)
    ds = data.dataset(split, training=False)
    y, probs = predict(model, ds)
    result = jm.evaluate_predictions(y, probs, data.class_names, signal_class=config.signal,
                                     n_boot=config.n_boot if n_boot is None else n_boot, seed=config.seed)
    result.update(dataset=data.info.name, split=split, model=config.model,
                  inference_ms_per_100_jets=inference_ms_per_100(model, ds), params=zoo.count_params(tagger))
    stem = f"{data.info.name.replace('/', '-')}-{split}"
    out = RunDir(run_dir).path / "evaluation"
    write_json(out / f"{stem}.json", result)
    plots.plot_roc(y, probs, data.class_names, out / f"{stem}-roc.png", signal_class=config.signal)
    plots.plot_rejection(y, probs, data.class_names, out / f"{stem}-rejection.png", signal_class=config.signal)
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


PROG = "python -m jettf.evaluate"


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0], epilog="--debug: show tracebacks")
    p.add_argument("run_dir", type=Path, nargs="?", help="a run directory of python -m jettf.train")
    p.add_argument("--dataset", help="NAME/CONFIG to evaluate on (default: the run's dataset)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", help="data directory (default: the run's)")
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


def main(argv=None) -> int:
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
