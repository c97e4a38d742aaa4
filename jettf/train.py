"""Train a jet tagger: ``python -m jettf.train --task multiclass|binary [...]``.

Examples::

    python -m jettf.train --task multiclass --quick                  # minutes on a laptop
    python -m jettf.train --task multiclass                          # 000: ensemble, 299x299, 5 folds x 15 epochs
    python -m jettf.train --task binary --dataset top_tagging_images --model effnet_s --global-features
    python -m jettf.train --resume runs/multiclass-ensemble-jetnet_images-default-s0

Every option is a field of :class:`jettf.training.config.TrainConfig` (same name, same help). Without
the dataset on disk the command builds it first (from the public files in ``--manual-dir``, or a
generated Pythia sample). Results go to a run directory (``--out``, default
``runs/<task>-<model>-<dataset>-s<seed>``): config.json, metrics.json, report.md, plots/,
model.keras, checkpoints/, logs/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "parse_args", "resolve_run"]

PROG = "python -m jettf.train"


def parse_args(argv=None) -> argparse.Namespace:
    from jettf.training.config import add_arguments

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="--debug: show tracebacks")
    p.add_argument("--quick", action="store_true", default=None,
                   help="small generated dataset and model: minutes on 2 CPU cores")
    p.add_argument("--config", type=Path, help="JSON file of settings: a tuning sweep's best_config.json, or a run's "
                                               "config.json")
    p.add_argument("--out", type=Path, help="run directory (default runs/<task>-<model>-<dataset>-s<seed>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run as it was")
    add_arguments(p)
    args = p.parse_args(argv)
    if args.resume is None and args.task is None and args.config is None:
        p.error("--task is required (or --config FILE, or --resume RUN_DIR)")
    return args


def default_run_name(config) -> str:
    """``<task>[-<signal>-vs-<background>]-<model>[+gf]-<dataset>-s<seed>``."""
    name = [config.task, config.model + ("+gf" if config.global_features else ""), config.dataset.replace("/", "-"),
            f"s{config.seed}"]
    if config.task == "binary":
        name.insert(1, f"{config.signal}-vs-{config.background}")
    return "-".join(name)


def resolve_run(args: argparse.Namespace) -> tuple:
    """``(TrainConfig, RunDir)`` from the command line."""
    import dataclasses

    from jettf.data import default_data_dir
    from jettf.training.config import from_arguments, read_config_file, resolve
    from jettf.training.run_dir import RunDir

    given = from_arguments(args)
    if args.resume is not None:
        run_dir = RunDir(args.resume)
        config = run_dir.read_train_config()
        fixed = sorted(k for k in given if not _may_change(k) and given[k] != getattr(config, k))
        if fixed:
            raise ValueError(f"--resume {run_dir.path}: {fixed} cannot change when a run is resumed")
        return dataclasses.replace(config, **given), run_dir
    file_config = read_config_file(args.config) if args.config else None
    config = resolve(file_config=file_config, **given)
    config = dataclasses.replace(config, data_dir=str(Path(config.data_dir or default_data_dir()).resolve()))
    return config, RunDir(args.out or Path("runs") / default_run_name(config))


def _may_change(name: str) -> bool:
    import dataclasses

    from jettf.training.config import TrainConfig

    return {f.name: f.metadata["resume_may_change"] for f in dataclasses.fields(TrainConfig)}[name]


def _main(argv) -> int:
    args = parse_args(argv)
    config, run_dir = resolve_run(args)
    from jettf.training.trainer import run_seeds

    metrics = run_seeds(config, run_dir.path)
    test = metrics["test"]
    headline = f"accuracy {test['accuracy']:.4f}, " if isinstance(test.get("accuracy"), float) else ""
    score = test.get("auc", test.get("auc_mean"))
    score = f"{score:.4f}" if isinstance(score, float) else score
    print(f"done: {run_dir.path} ({headline}AUC {score}); report: {run_dir.report_path}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
