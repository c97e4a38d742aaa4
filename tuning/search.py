"""Hyperparameter search: ``python -m tuning.search --hypermodel NAME [...]``.

Examples::

    python -m tuning.search --hypermodel lenet --quick                 # 3 tiny trials, minutes on a CPU
    python -m tuning.search --hypermodel effnet_s --max-trials 50      # 002's EffNet-S space, Bayesian
    python -m tuning.search --hypermodel calo_cnn --oracle random --objective val_loss --out sweeps/calo
    python -m tuning.search --hypermodel effnet_s --oracle hyperband --hyperband-max-epochs 27
    python -m tuning.search --hypermodel my_spaces.py:build --dataset quark_gluon_images   # your own space
    python -m tuning.search --resume --out sweeps/calo --max-trials 100  # continue, with a larger budget

keras-tuner's Bayesian optimization proposes trials by default (``--oracle random`` or ``hyperband``
instead); the objective is the validation AUC, maximized (``--objective val_loss``: minimized). Each
trial trains once with the project's trainer (jettf.training.trainer.fit_validate), checkpointed
every epoch. Rerunning the same command, or ``--resume --out DIR``, continues a search where it
stopped, even after kill -9: finished trials are kept, the running one continues from its last
epoch and ends as it would have without the interruption, and ``--max-trials`` may be raised.

Trainer settings (the options below ``--config``, the fields of TrainConfig) are the base of every
trial; the hypermodel's values override them. The task defaults to binary.

Output in ``--out`` (default ``tuning_runs/<hypermodel>-<dataset>-<oracle>``): ``trials.csv``/
``trials.md``, ``best_config.json`` (the best trial's complete TrainConfig), ``best_trial.json``,
``objective.png``, ``search.json`` (the settings) and ``keras_tuner/`` (oracle state, one folder per
trial). The last line printed is the command that trains the best trial
(``python -m jettf.train --config OUT/best_config.json --out OUT/train-trial_<id>``); ``--retrain``
runs it. Distributed sweeps (one oracle, many workers): see tuning/distributed.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

__all__ = ["main", "parse_args", "QUICK", "search_settings", "base_config", "run_search", "retrain_best",
           "declared_space"]

PROG = "python -m tuning.search"
#: The shipped hypermodels (tuning.hypermodels.HYPERMODELS), named here so --help needs no keras_tuner.
SHIPPED = ("effnet_s", "ensemble", "lenet", "calo_cnn", "dense")
#: --quick: 3 tiny trials on a small generated dataset, a couple of minutes on 2 CPU cores (on top of
#: TrainConfig's own quick settings).
QUICK = {"max_trials": 3, "config": {"n_jets": 100, "epochs": 2, "patience": 1}}
DEFAULT_MAX_TRIALS = 20
#: Settings that must match to continue a search in the same folder (max_trials may grow).
_IDENTITY = ("hypermodel", "oracle", "objective", "initial_points", "hyperband_max_epochs", "hyperband_factor",
             "seed", "base_config")


def parse_args(argv=None) -> argparse.Namespace:
    from jettf.training.config import add_arguments

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1] + "\n--debug: show tracebacks")
    p.add_argument("--hypermodel", help=f"{', '.join(SHIPPED)} (tuning/hypermodels.py), or your own: "
                                        "MODULE:NAME or path/to/file.py:NAME (a function build(hp) -> dict of "
                                        "TrainConfig settings, or a keras_tuner.HyperModel)")
    p.add_argument("--oracle", choices=("bayesian", "random", "hyperband"), default=None, help="default bayesian")
    p.add_argument("--objective", choices=("val_auc", "val_loss"), default=None,
                   help="val_auc (maximized, default) or val_loss (minimized)")
    p.add_argument("--max-trials", type=int, help=f"trials in all (default {DEFAULT_MAX_TRIALS}, --quick 3)")
    p.add_argument("--initial-points", type=int,
                   help="bayesian: random trials before the Gaussian process (default: 3 per hyperparameter)")
    p.add_argument("--hyperband-max-epochs", type=int, default=None, help="hyperband: largest budget (default 9)")
    p.add_argument("--hyperband-factor", type=int, default=None, help="hyperband: reduction factor (default 3)")
    p.add_argument("--quick", action="store_true", help="3 tiny trials on a small generated dataset")
    p.add_argument("--out", type=Path, help="search folder (default tuning_runs/<hypermodel>-<dataset>-<oracle>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out with its saved settings")
    p.add_argument("--retrain", action="store_true", help="train the best trial with the full trainer (the command "
                                                          "printed at the end)")
    p.add_argument("--wait-for-data", type=float, default=900.0, metavar="SECONDS",
                   help="workers: how long to wait for the chief to build the dataset")
    group = p.add_argument_group("trainer settings (TrainConfig fields; the base of every trial)")
    group.add_argument("--config", type=Path, help="JSON file of TrainConfig settings (or a run's config.json)")
    add_arguments(group, skip=("quick", "model", "seeds"))
    args = p.parse_args(argv)
    if not args.resume and not args.hypermodel:
        p.error("--hypermodel is required (or --resume --out DIR)")
    if args.resume and args.out is None:
        p.error("--resume needs --out DIR")
    return args


def role() -> str:
    """``"standalone"``, ``"chief"`` or ``"worker"`` from keras-tuner's environment variables."""
    from tuning.distributed import role as _role

    return _role()


def _hypermodel_spec(text: str) -> str:
    """``--hypermodel`` as saved: a file path made absolute, so ``--resume`` works from anywhere."""
    where, sep, attr = text.rpartition(":")
    if sep and where.endswith(".py"):
        return f"{Path(where).resolve()}:{attr}"
    return text


def base_config(hypermodel, quick: bool, file_config: dict, given: dict):
    """The TrainConfig every trial starts from: jettf.train's resolution (paper preset <- quick <- file <- command
    line) with the hypermodel's model and default dataset, binary by default, :data:`QUICK` under ``--quick``,
    and the dataset named with its jet count (``quick-n100``)."""
    import dataclasses

    import keras_tuner as kt

    from jettf.data import default_data_dir
    from jettf.data.building import resolve_config
    from jettf.training.config import resolve

    defaults = hypermodel.build(kt.HyperParameters())
    given = dict(given)
    if not given.get("dataset") and not file_config.get("dataset") and getattr(hypermodel, "dataset", None):
        given["dataset"] = hypermodel.dataset
    given.setdefault("task", file_config.get("task") or "binary")
    if isinstance(defaults, dict) and defaults.get("model"):
        given["model"] = defaults["model"]
    given["quick"] = bool(quick or given.get("quick") or file_config.get("quick"))
    quick_config = QUICK["config"] if given["quick"] else {}
    config = resolve(file_config={**quick_config, **file_config}, **given)
    builder, dataset_config = resolve_config(config.dataset, config.n_jets)
    return dataclasses.replace(config, dataset=f"{builder.name}/{dataset_config.name}",
                               data_dir=str(Path(config.data_dir or default_data_dir()).resolve()))


def search_settings(args: argparse.Namespace) -> dict:
    """The settings of a new search from the command line (saved as ``search.json``)."""
    from jettf.training.config import from_arguments, read_config_file
    from tuning.hypermodels import get_hypermodel

    spec = _hypermodel_spec(args.hypermodel)
    hypermodel = get_hypermodel(spec, quick=args.quick)
    file_config = read_config_file(args.config) if args.config else {}
    config = base_config(hypermodel, args.quick, file_config, from_arguments(args))
    return {
        "hypermodel": spec,
        "oracle": args.oracle or "bayesian",
        "objective": args.objective or "val_auc",
        "max_trials": args.max_trials or (QUICK["max_trials"] if args.quick else DEFAULT_MAX_TRIALS),
        "initial_points": args.initial_points,
        "hyperband_max_epochs": args.hyperband_max_epochs or 9,
        "hyperband_factor": args.hyperband_factor or 3,
        "seed": config.seed,
        "base_config": config.to_dict(),
    }


def _differences(saved: dict, new: dict) -> list:
    """Settings of ``new`` that differ from the ``saved`` search (paths and device settings may change)."""
    from jettf.training.config import TrainConfig

    out = [key for key in _IDENTITY if key != "base_config" and saved.get(key) != json.loads(json.dumps(new.get(key)))]
    a = TrainConfig.from_dict(saved["base_config"], where="search.json: base_config")
    b = TrainConfig.from_dict(json.loads(json.dumps(new["base_config"])))
    return out + [f"base_config.{name}" for name in a.changed_for_resume(b)]


def declared_space(hypermodel) -> list:
    """Every hyperparameter ``hypermodel`` declares, conditional ones included, as keras-tuner configs
    (found as keras-tuner finds them: a tuner on a scratch oracle)."""
    import tempfile

    import keras_tuner as kt

    from tuning.hypermodels import plain

    oracle = kt.oracles.RandomSearchOracle(max_trials=1)
    with tempfile.TemporaryDirectory() as tmp:
        kt.engine.base_tuner.BaseTuner(oracle, hypermodel, directory=tmp)
    return plain(json.loads(json.dumps(oracle.get_space().get_config()["space"], default=str)))


def _dataset_info(config, current_role: str, wait: float):
    """Build (or load) the search's dataset; workers wait for the chief to build it."""
    import jettf.data as jd

    if current_role == "worker":
        deadline = time.monotonic() + wait
        while True:
            try:
                return jd.load_info(config.dataset, config.data_dir)
            except FileNotFoundError as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker: {err} (waited {wait:.0f} s for the chief)") from None
                time.sleep(2.0)
    return jd.build(config.dataset, data_dir=config.data_dir, manual_dir=config.manual_dir, n_jets=config.n_jets)


def run_search(settings: dict, out: Path, *, log: Callable[[str], None] = print, retrain: bool = False,
               wait_for_data: float = 900.0, verbose: int = 1) -> dict:
    """Run (or continue) the search described by ``settings`` in ``out``; returns a summary.

    ``verbose=0`` silences keras-tuner's per-trial tables on stdout (``log`` still gets the progress lines).
    The summary holds ``rows`` (the trials table), ``best_config``, ``best_trial``, ``best_score``,
    ``n_trials``, ``seconds`` (wall time of this call's search) and ``train_command``.
    """
    from jettf.training.config import TrainConfig
    from jettf.utils import read_json, write_json
    from tuning import results
    from tuning.hypermodels import get_hypermodel
    from tuning.tuner import JetTuner, make_oracle

    current = role()
    config = TrainConfig.from_dict(settings["base_config"], where=f"{out / 'search.json'}: base_config")
    info = _dataset_info(config, current, wait_for_data)
    hypermodel = get_hypermodel(settings["hypermodel"], image_side=info.image_spec.npix, quick=config.quick)
    space = declared_space(hypermodel)
    saved_path = out / "search.json"
    if saved_path.exists() and read_json(saved_path).get("space", space) != space:
        raise ValueError(f"{out}: hypermodel {settings['hypermodel']} now declares other hyperparameters than when "
                         f"this search started (see search.json 'space'); use another --out")
    settings = {**settings, "space": space}
    out.mkdir(parents=True, exist_ok=True)
    if current != "worker":
        write_json(saved_path, settings)
    hp_names = [p["config"]["name"] for p in space]
    oracle = make_oracle(settings["oracle"], settings["objective"], settings["max_trials"], settings["seed"],
                         settings["initial_points"], settings["hyperband_max_epochs"], settings["hyperband_factor"])

    def after_trial(tuner):
        if current == "standalone":
            results.write_results(out, tuner, settings["objective"], hp_names, plot=False)

    tuner = JetTuner(oracle, hypermodel, config, out, log=log, on_trial_done=after_trial)
    tuner.oracle.verbose = verbose if current != "worker" else 0
    if current != "worker":
        # keras-tuner keeps max_trials out of the saved oracle state: the budget of this call counts.
        tuner.oracle.max_trials = settings["max_trials"]
        done = sum(1 for t in tuner.oracle.trials.values() if str(t.status) in ("COMPLETED", "FAILED"))
        log(f"[tuning] {hypermodel.name} on {config.dataset} with {settings['oracle']} search, objective "
            f"{settings['objective']}: {done} of {settings['max_trials']} trials done ({current}) -> {out}")
    start = time.perf_counter()
    tuner.search()
    seconds = time.perf_counter() - start
    if current == "worker":
        log(f"[tuning] worker {tuner.tuner_id}: no more trials, exiting")
        return {"role": current}
    summary = results.write_results(out, tuner, settings["objective"], hp_names)
    best = results.best_trial(tuner.oracle)
    summary.update(role=current, seconds=seconds, n_trials=len(summary["rows"]),
                   best_score=None if best is None else best.score,
                   best_trial=None if best is None else best.trial_id,
                   train_command=None if best is None else results.train_command(out, best.trial_id))
    if best is None:
        log(f"[tuning] no trial completed; see {out / 'trials.md'}")
        return summary
    log(f"[tuning] best trial {best.trial_id}: {settings['objective']} {best.score:.4f}; wrote "
        f"{out / 'trials.md'}, {out / 'best_config.json'}, {out / 'objective.png'}")
    if retrain:
        summary["retrain"] = retrain_best(summary["train_command"], log)
    log(f"[tuning] train it: {summary['train_command']}")
    return summary


def retrain_best(command: str, log: Callable[[str], None] = print) -> dict:
    """Run ``command`` (``python -m jettf.train --config ... --out ...``, as printed) in this process."""
    import shlex

    from jettf import train
    from jettf.training.trainer import run_seeds

    argv = shlex.split(command)
    config, run_dir = train.resolve_run(train.parse_args(argv[3:]))
    log(f"[tuning] retraining the best trial: {command}")
    return run_seeds(config, run_dir.path, log)


def _main(argv) -> int:
    from jettf.utils import read_json

    args = parse_args(argv)
    if args.resume:
        saved_path = args.out / "search.json"
        if not saved_path.exists():
            raise FileNotFoundError(f"--resume: {args.out} holds no search (no search.json)")
        settings = read_json(saved_path)
        if args.max_trials:
            settings["max_trials"] = args.max_trials
    else:
        settings = search_settings(args)
        out = args.out or Path("tuning_runs") / "-".join(
            [Path(settings["hypermodel"].rpartition(":")[2]).name,
             settings["base_config"]["dataset"].replace("/", "-"), settings["oracle"]])
        saved_path = out / "search.json"
        if saved_path.exists():
            changed = _differences(read_json(saved_path), settings)
            if changed:
                raise ValueError(f"{out}: holds a search with different {changed}; use another --out "
                                 f"(or --resume --out {out} to continue it as it was)")
    def log(line: str) -> None:
        sys.stdout.flush()  # keras-tuner's tables go to stdout: keep the two streams in order
        print(line, file=sys.stderr, flush=True)

    summary = run_search(settings, saved_path.parent, retrain=args.retrain, wait_for_data=args.wait_for_data, log=log)
    if summary.get("role") != "worker" and summary.get("best_trial") is None:
        return 1
    return 0


def main(argv=None) -> int:
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
