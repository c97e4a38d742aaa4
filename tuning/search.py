"""Hyperparameter search: ``python -m tuning.search --hypermodel NAME [...]``.

Examples::

    python -m tuning.search --hypermodel lenet --quick                 # 3 tiny trials, minutes on a CPU
    python -m tuning.search --hypermodel effnet_s --max-trials 50      # 002's EffNet-S space, Bayesian
    python -m tuning.search --hypermodel calo_cnn --oracle random --objective val_loss --out sweeps/calo
    python -m tuning.search --hypermodel effnet_s --oracle hyperband --hyperband-max-epochs 27
    python -m tuning.search --resume --out sweeps/calo --max-trials 100  # continue, with a larger budget

keras-tuner's ``BayesianOptimization`` oracle proposes trials by default
(``--oracle random`` or ``hyperband`` instead); the objective is the validation
AUC, maximized (``--objective val_loss``: minimized). Each trial trains once
with the project's trainer (:func:`jettf.training.trainer.fit_validate`) and
is checkpointed every epoch. Rerunning the same command, or ``--resume --out
DIR``, continues a search where it stopped: finished trials are kept, running
ones continue from their last epoch, and ``--max-trials`` may be raised.

Output in ``--out`` (default ``tuning_runs/<hypermodel>-<dataset>-<oracle>``):
``trials.csv``/``trials.md`` (hyperparameters, objective, time, parameters per
trial), ``best_config.json`` (for ``python -m jettf.train --task ... --config``),
``best_trial.json``, ``objective.png``, ``search.json`` (the settings), and
``keras_tuner/`` (oracle state and one folder per trial). ``--retrain`` then
trains the best configuration with the full trainer into ``OUT/best_model``.

Distributed sweeps (one oracle, many workers) use keras-tuner's chief/worker
environment variables; see :mod:`tuning.distributed`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

__all__ = ["main", "parse_args", "QUICK", "search_settings", "base_config"]

#: --quick: 3 tiny trials on a small generated dataset, a couple of minutes on 2 CPU cores.
QUICK = {"max_trials": 3, "n_jets": 100, "config": {"epochs": 2, "patience": 1, "round_size": 400}}
DEFAULT_MAX_TRIALS = 20
#: Settings that must match to continue a search in the same folder.
_IDENTITY = ("hypermodel", "space", "task", "dataset", "oracle", "objective", "base_config", "initial_points",
             "hyperband_max_epochs", "hyperband_factor", "seed")


def parse_args(argv=None) -> argparse.Namespace:
    from tuning.tuner import OBJECTIVES, ORACLES

    p = argparse.ArgumentParser(prog="python -m tuning.search", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--hypermodel", help="a shipped space (effnet_s, ensemble, lenet, calo_cnn) or a space YAML file")
    p.add_argument("--dataset", help="NAME or NAME/CONFIG (default: the space's dataset)")
    p.add_argument("--task", choices=("binary", "multiclass"), default=None, help="default binary")
    p.add_argument("--oracle", choices=ORACLES, default=None, help="default bayesian")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default=None,
                   help="val_auc (maximized, default) or val_loss (minimized)")
    p.add_argument("--max-trials", type=int, help=f"trials in all (default {DEFAULT_MAX_TRIALS}, --quick 3)")
    p.add_argument("--initial-points", type=int,
                   help="bayesian: random trials before the Gaussian process (default: 3 per hyperparameter)")
    p.add_argument("--hyperband-max-epochs", type=int, default=None, help="hyperband: largest budget (default 9)")
    p.add_argument("--hyperband-factor", type=int, default=None, help="hyperband: reduction factor (default 3)")
    p.add_argument("--quick", action="store_true", help="3 tiny trials on a small generated dataset")
    p.add_argument("--out", type=Path, help="search folder (default tuning_runs/<hypermodel>-<dataset>-<oracle>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out with its saved settings")
    p.add_argument("--retrain", action="store_true", help="train the best configuration with the full trainer")
    p.add_argument("--config", type=Path, help="JSON of trainer settings every trial starts from")
    p.add_argument("--epochs", type=int, help="epochs per trial (kfold scheme) or most epochs per round (rounds)")
    p.add_argument("--patience", type=int, help="epochs without a better validation loss that end a trial / round")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--n-jets", type=int, help="jets per class when the dataset is generated")
    p.add_argument("--data-dir", help="TFDS data directory (default ./data)")
    p.add_argument("--manual-dir", help="folder with the public dataset files")
    p.add_argument("--seed", type=int, default=None, help="training and oracle seed (default 0)")
    p.add_argument("--wait-for-data", type=float, default=900.0, metavar="SECONDS",
                   help="workers: how long to wait for the chief to build the dataset")
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


def base_config(space, task: str, dataset: Optional[str], quick: bool, file_config: Optional[dict], *,
                epochs=None, patience=None, batch_size=None, n_jets=None, data_dir=None, manual_dir=None,
                seed=None) -> dict:
    """The resolved trainer configuration every trial starts from (before the trial's overrides)."""
    from jettf.training.config import resolve_config
    from tuning.hypermodels import merge_config

    config = resolve_config(task, dataset or (file_config or {}).get("dataset") or space.dataset, quick,
                            {k: v for k, v in (file_config or {}).items() if k != "dataset"},
                            model=space.model, seed=seed, n_jets=n_jets, data_dir=data_dir, manual_dir=manual_dir)
    config = merge_config(config, space.config, space.quick if quick else {}, QUICK["config"] if quick else {})
    config.update({k: v for k, v in dict(epochs=epochs, patience=patience, batch_size=batch_size).items()
                   if v is not None})
    config["data_dir"] = str(Path(config["data_dir"] or "data").resolve())
    config["n_boot"] = 0
    return config


def search_settings(args: argparse.Namespace) -> dict:
    """The settings of a new search from the command line (saved as ``search.json``)."""
    from tuning.space import load_space

    space = load_space(args.hypermodel)
    file_config = json.loads(args.config.read_text()) if args.config else None
    n_jets = args.n_jets if args.n_jets is not None else (QUICK["n_jets"] if args.quick else None)
    config = base_config(space, args.task or "binary", args.dataset, args.quick, file_config, epochs=args.epochs,
                         patience=args.patience, batch_size=args.batch_size, n_jets=n_jets, data_dir=args.data_dir,
                         manual_dir=args.manual_dir, seed=args.seed)
    return {
        "hypermodel": space.name,
        "space_file": str(space.path),
        "space": space.to_dict(),
        "task": config["task"],
        "dataset": config["dataset"],
        "oracle": args.oracle or "bayesian",
        "objective": args.objective or "val_auc",
        "max_trials": args.max_trials or (QUICK["max_trials"] if args.quick else DEFAULT_MAX_TRIALS),
        "initial_points": args.initial_points,
        "hyperband_max_epochs": args.hyperband_max_epochs or 9,
        "hyperband_factor": args.hyperband_factor or 3,
        "seed": config["seed"],
        "quick": bool(args.quick),
        "base_config": config,
    }


def _differences(saved: dict, new: dict) -> list:
    out = []
    for key in _IDENTITY:
        a, b = saved.get(key), json.loads(json.dumps(new.get(key)))
        if key == "base_config" and isinstance(a, dict) and isinstance(b, dict):
            out += [f"base_config.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(key)
    return out


def _space_from_settings(settings: dict):
    """The search space as saved with the search (so a later edit of the YAML file cannot change a running search)."""
    from tuning.space import parse_space

    raw = copy.deepcopy(settings["space"])
    raw.pop("name", None)
    return parse_space(raw, Path(settings["space_file"]).with_name(f"{settings['hypermodel']}.yaml"))


def _dataset_info(config: dict, current_role: str, wait: float, log):
    """Build (or load) the search's dataset; workers wait for the chief to build it."""
    import jettf.data as jd

    name = config["dataset"]
    if config.get("n_jets"):
        name = f"{name}-n{int(config['n_jets'])}"
    if current_role == "worker":
        deadline = time.monotonic() + wait
        while True:
            try:
                return jd.load_info(name, config["data_dir"])
            except Exception as e:  # noqa: BLE001 - not built (yet)
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"worker: dataset {name} is not built in {config['data_dir']} after {wait:.0f} s; build it "
                        f"first: python -m jettf.data build {config['dataset']} --data-dir {config['data_dir']}"
                        + (f" --n-jets {config['n_jets']}" if config.get("n_jets") else "")) from e
                time.sleep(2.0)
    return jd.build(config["dataset"], data_dir=config["data_dir"], manual_dir=config["manual_dir"],
                    n_jets=config["n_jets"])


def _restrict_to_dataset(space, info, config: dict, log) -> None:
    """Drop crop choices larger than the dataset's images."""
    for p in list(space.hyperparameters):
        if p.target == "crop" and p.type == "choice":
            npix = info.image_spec.npix
            dropped = [v for v in p.spec["values"] if v > npix]
            if dropped:
                log(f"[tuning] {p.name}: dropping {dropped} (larger than the {npix}x{npix} images)")
            space.restrict(p.name, lambda v, n=npix: v <= n, f"images are {npix}x{npix}")


def run_search(settings: dict, out: Path, *, log: Callable[[str], None] = print, retrain: bool = False,
               wait_for_data: float = 900.0, verbose: int = 1) -> dict:
    """Run (or continue) the search described by ``settings`` in ``out``; returns a summary.

    ``verbose=0`` silences keras-tuner's per-trial tables on stdout (``log`` still gets the progress lines).
    The summary holds ``rows`` (the trials table), ``best_config``, ``best_trial``, ``best_score``,
    ``n_trials`` and ``seconds`` (wall time of this call's search).
    """
    from jettf.utils import write_json
    from tuning import results
    from tuning.hypermodels import JetHyperModel
    from tuning.tuner import JetTuner, make_oracle

    current = role()
    config = settings["base_config"]
    space = _space_from_settings(settings)
    info = _dataset_info(config, current, wait_for_data, log)
    if config["task"] == "multiclass" and info.n_classes < 3:
        raise SystemExit(f"--task multiclass needs a dataset with 3+ classes; {info.name} has {info.class_names}")
    _restrict_to_dataset(space, info, config, log)
    out.mkdir(parents=True, exist_ok=True)
    if current != "worker":
        write_json(out / "search.json", settings)
    oracle = make_oracle(settings["oracle"], settings["objective"], settings["max_trials"], settings["seed"],
                         settings["initial_points"], settings["hyperband_max_epochs"], settings["hyperband_factor"])

    def after_trial(tuner):
        if current == "standalone":
            results.write_results(out, tuner, settings["objective"], plot=False)

    tuner = JetTuner(oracle, JetHyperModel(space), config, out, log=log, on_trial_done=after_trial)
    tuner.oracle.verbose = verbose if current != "worker" else 0
    if current != "worker":
        # keras-tuner keeps max_trials out of the saved oracle state: the budget of this call counts.
        tuner.oracle.max_trials = settings["max_trials"]
        done = sum(1 for t in tuner.oracle.trials.values() if str(t.status) in ("COMPLETED", "FAILED"))
        log(f"[tuning] {settings['hypermodel']} on {settings['dataset']} with {settings['oracle']} search, "
            f"objective {settings['objective']}: {done} of {settings['max_trials']} trials done ({current}) -> {out}")
    start = time.perf_counter()
    tuner.search()
    seconds = time.perf_counter() - start
    if current == "worker":
        log(f"[tuning] worker {tuner.tuner_id}: no more trials, exiting")
        return {"role": current}
    summary = results.write_results(out, tuner, settings["objective"])
    rows = summary["rows"]
    best = results.best_trial(tuner.oracle)
    summary.update(role=current, seconds=seconds, n_trials=len(rows),
                   best_score=None if best is None else best.score,
                   best_trial=None if best is None else best.trial_id)
    if best is None:
        log(f"[tuning] no trial completed; see {out / 'trials.md'}")
    else:
        log(f"[tuning] best trial {best.trial_id}: {settings['objective']} {best.score:.4f}; wrote "
            f"{out / 'trials.md'}, {out / 'best_config.json'}, {out / 'objective.png'}")
        log(f"[tuning] train it: python -m jettf.train --task {settings['task']} --config {out / 'best_config.json'}")
    if retrain and best is not None:
        summary["retrain"] = retrain_best(settings, out, log)
    return summary


def retrain_best(settings: dict, out: Path, log: Callable[[str], None] = print) -> dict:
    """Train ``best_config.json`` with the full trainer (``python -m jettf.train --config``) into ``OUT/best_model``."""
    from jettf.training.config import resolve_config
    from jettf.training.trainer import run_seeds
    from jettf.utils import read_json

    base = settings["base_config"]
    config = resolve_config(settings["task"], None, settings["quick"], read_json(out / "best_config.json"),
                            seed=base["seed"], n_jets=base["n_jets"], data_dir=base["data_dir"],
                            manual_dir=base["manual_dir"])
    log(f"[tuning] retraining the best configuration into {out / 'best_model'}")
    return run_seeds(config, out / "best_model", log)


def main(argv=None) -> int:
    from jettf.utils import sigterm_as_keyboard_interrupt; sigterm_as_keyboard_interrupt()  # kill = Ctrl-C
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    from jettf.utils import read_json

    saved_path = None if args.out is None else args.out / "search.json"
    if args.resume:
        if not saved_path.exists():
            raise SystemExit(f"--resume: {args.out} holds no search (no search.json)")
        settings = read_json(saved_path)
        if args.max_trials:
            settings["max_trials"] = args.max_trials
    else:
        settings = search_settings(args)
        out = args.out or Path("tuning_runs") / "-".join(
            [settings["hypermodel"], settings["dataset"].replace("/", "-"), settings["oracle"]])
        saved_path = out / "search.json"
        if saved_path.exists():
            saved = read_json(saved_path)
            changed = _differences(saved, settings)
            if changed:
                raise SystemExit(f"{out}: holds a search with different {changed}; use another --out "
                                 f"(or --resume --out {out} to continue it as it was)")
    out = saved_path.parent
    summary = run_search(settings, out, retrain=args.retrain, wait_for_data=args.wait_for_data,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    if summary.get("role") != "worker" and summary.get("best_trial") is None:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
