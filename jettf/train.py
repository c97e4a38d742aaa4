"""Train a jet tagger: ``python -m jettf.train --task multiclass|binary [...]``.

Examples::

    python -m jettf.train --task multiclass --quick                  # minutes on a laptop
    python -m jettf.train --task multiclass                          # 000: ensemble, 299x299, 5 folds x 15 epochs
    python -m jettf.train --task binary --dataset top_tagging_images --model effnet_s --global-features
    python -m jettf.train --resume runs/multiclass-ensemble-jetnet_images-default-s0

Without the dataset on disk the command builds it first (from the public files
in ``--manual-dir``, or a generated Pythia sample). Results go to a run
directory (``--out``, default ``runs/<task>-<model>-<dataset>-s<seed>``):
config.json, metrics.json, report.md, plots/, model.keras, checkpoints/, logs/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "parse_args"]


def _model_option(text: str):
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--model-option expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m jettf.train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("multiclass", "binary"), help="5-class (JetNet) or signal vs background")
    p.add_argument("--dataset", help="NAME or NAME/CONFIG of a tfds_builders dataset")
    p.add_argument("--model", help="a name from jettf.models.available()")
    p.add_argument("--model-option", action="append", type=_model_option, default=[], metavar="KEY=VALUE",
                   help="architecture option passed to jettf.models.build (JSON values), repeatable")
    p.add_argument("--quick", action="store_true", help="small generated dataset and model: minutes on 2 CPU cores")
    p.add_argument("--config", type=Path, help="JSON file of settings (e.g. the best trial of a tuning sweep)")
    p.add_argument("--signal", help="binary task: signal class (default per dataset)")
    p.add_argument("--background", help="binary task: background class (default per dataset)")
    p.add_argument("--scheme", choices=("kfold", "rounds"), help="000's K-fold CV or 002's rounds")
    p.add_argument("--folds", type=int, help="K for K-fold cross-validation")
    p.add_argument("--epochs", type=int, help="epochs per fold (kfold) or the most epochs per round (rounds)")
    p.add_argument("--round-size", type=int, help="jets per round (002: 300000)")
    p.add_argument("--patience", type=int, help="epochs without improvement that end a round (002: 10)")
    p.add_argument("--sweeps", type=int, help="passes over all rounds")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--global-features", action="store_true", default=None,
                   help="fuse the dataset's global jet features into the model")
    p.add_argument("--seed", type=int)
    p.add_argument("--seeds", type=int, help="train this many seeds (seed, seed+1, ...) and report mean and std")
    p.add_argument("--n-boot", type=int, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--data-dir", help="TFDS data directory (default: ./data)")
    p.add_argument("--manual-dir", help="folder with the public dataset files")
    p.add_argument("--n-jets", type=int, help="jets per class when the dataset is generated")
    p.add_argument("--out", type=Path, help="run directory")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    mp = p.add_mutually_exclusive_group()
    mp.add_argument("--mixed-precision", dest="mixed_precision", action="store_true", default=None)
    mp.add_argument("--no-mixed-precision", dest="mixed_precision", action="store_false")
    args = p.parse_args(argv)
    if args.resume is None and args.task is None:
        p.error("--task is required (or --resume RUN_DIR)")
    return args


def resolve(args: argparse.Namespace) -> tuple:
    """``(config, run_dir)`` from the command line."""
    from jettf.training.config import resolve_config
    from jettf.training.run_dir import RunDir

    if args.resume is not None:
        run_dir = RunDir(args.resume)
        return run_dir.read_config(), run_dir
    file_config = json.loads(args.config.read_text()) if args.config else None
    config = resolve_config(
        args.task, args.dataset, args.quick, file_config,
        model=args.model, signal=args.signal, background=args.background, scheme=args.scheme, folds=args.folds,
        epochs=args.epochs, round_size=args.round_size, patience=args.patience, sweeps=args.sweeps,
        batch_size=args.batch_size, learning_rate=args.learning_rate, global_features=args.global_features,
        seed=args.seed, seeds=args.seeds, n_boot=args.n_boot, data_dir=args.data_dir, manual_dir=args.manual_dir,
        n_jets=args.n_jets, mixed_precision=args.mixed_precision,
    )
    config["model_options"] = {**config["model_options"], **dict(args.model_option)}
    config["data_dir"] = str(Path(config["data_dir"] or "data").resolve())
    name = [config["task"], config["model"] + ("+gf" if config["global_features"] else ""),
            config["dataset"].replace("/", "-"), f"s{config['seed']}"]
    if config["task"] == "binary":
        name.insert(1, f"{config['signal']}-vs-{config['background']}")
    out = args.out or Path("runs") / "-".join(name)
    return config, RunDir(out)


def main(argv=None) -> int:
    from jettf.utils import sigterm_as_keyboard_interrupt; sigterm_as_keyboard_interrupt()  # kill = Ctrl-C
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    args = parse_args(argv)
    config, run_dir = resolve(args)
    from jettf.training.trainer import run_seeds

    metrics = run_seeds(config, run_dir.path)
    test = metrics["test"]
    headline = f"accuracy {test['accuracy']:.4f}" if isinstance(test.get("accuracy"), float) else ""
    score = test.get("auc", test.get("auc_mean"))
    print(f"done: {run_dir.path} ({headline}, AUC {score})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
