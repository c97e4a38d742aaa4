"""Tuning throughput and search quality: trials per hour, and Bayesian optimization against random search.

    python benchmarks/bench_tuning.py                                   # CPU-sized defaults, a few minutes
    python benchmarks/bench_tuning.py --trials 100 --report-at 10,30,100 --n-jets 5000 --epochs 10 --patience 3
    KERAS_BACKEND=jax python benchmarks/bench_tuning.py --trials 100 --report-at 10,30,100 --n-jets 5000 ...

Runs ``python -m tuning.search``'s search in this process (``tuning.search.run_search``)
for the ``--hypermodel`` (default 002's EffNet-S space, ``tuning.hypermodels.EffNetS``: phi
-13..-9, crop, dropout, learning rate, global-feature MLP) on a generated top-tagging sample
(``top_tagging_images/quick-n<N>``, Pythia 8 + FastJet, 40x40x3 images; built once,
not timed), once per oracle with the same budget, seed and trial settings
(``--quick`` trainer settings: 002's rounds with ``--epochs`` at most per round and
``--patience``). Bayesian optimization starts from ``--initial-points`` random
trials, the same first proposals random search makes with the same seed.

Prints, per oracle: trials, seconds per trial and trials per hour (wall clock of
the search: model building, tracing, training and validation of every trial; not
the dataset build or process start-up), and the best validation AUC after each
``--report-at`` budget (mean and spread over ``--repeats`` seeds). The validation
split holds 20 % of the jets, so AUC differences below ~1/sqrt(0.2 * 2N) are noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _device() -> str:
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = jax.devices()
        return f"jax on {devices[0].device_kind} x{len(devices)}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
            return f"tensorflow on {name} x{len(gpus)}"
    return f"{backend} on CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def _search(args, oracle: str, seed: int, out: Path, data_dir: Path, quiet: bool) -> dict:
    from tuning import search

    argv = ["--hypermodel", args.hypermodel, "--quick", "--n-jets", str(args.n_jets), "--epochs", str(args.epochs),
            "--patience", str(args.patience), "--max-trials", str(args.trials), "--oracle", oracle,
            "--seed", str(seed), "--data-dir", str(data_dir), "--out", str(out)]
    if args.dataset:
        argv += ["--dataset", args.dataset]
    if args.batch_size:
        argv += ["--batch-size", str(args.batch_size)]
    if oracle == "bayesian":
        argv += ["--initial-points", str(args.initial_points)]
    settings = search.search_settings(search.parse_args(argv))
    log = (lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    summary = search.run_search(settings, out, log=log, verbose=0 if quiet else 1)
    scores = [r.get("val_auc") for r in summary["rows"]]
    return {"seconds": summary["seconds"], "n": len(scores), "scores": scores}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hypermodel", default="effnet_s", help="a shipped hypermodel, MODULE:NAME or FILE.py:NAME")
    p.add_argument("--dataset", help="default top_tagging_images/quick")
    p.add_argument("--trials", type=int, default=4, help="trials per search (budget)")
    p.add_argument("--report-at", default=None, help="budgets to report the best AUC at (default 10,30,100 that fit, "
                   "and --trials)")
    p.add_argument("--oracles", default="bayesian,random")
    p.add_argument("--initial-points", type=int, default=3, help="Bayesian: random trials before the GP")
    p.add_argument("--n-jets", type=int, default=100, help="jets per class in the generated sample")
    p.add_argument("--epochs", type=int, default=2, help="most epochs per trial")
    p.add_argument("--patience", type=int, default=1)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--repeats", type=int, default=1, help="searches per oracle, seeds 0..R-1")
    p.add_argument("--data-dir", type=Path, help="default: a temporary folder")
    p.add_argument("--out", type=Path, help="keep the searches here (default: a temporary folder)")
    p.add_argument("--verbose", action="store_true", help="show the searches' progress")
    args = p.parse_args(argv)
    budgets = sorted({int(b) for b in args.report_at.split(",")} if args.report_at else
                     {b for b in (10, 30, 100) if b < args.trials} | {args.trials})
    oracles = [o.strip() for o in args.oracles.split(",") if o.strip()]
    tmp = tempfile.TemporaryDirectory(prefix="bench_tuning_")
    root = args.out or Path(tmp.name)
    data_dir = (args.data_dir or root / "data").resolve()

    import jettf.data as jd

    dataset = args.dataset or "top_tagging_images/quick"
    start = time.perf_counter()
    info = jd.build(dataset, data_dir=str(data_dir), n_jets=args.n_jets)
    build_s = time.perf_counter() - start
    print(f"# tuning benchmark: {args.hypermodel} on {info.name} ({info.splits}), built in {build_s:.0f} s")
    print(f"# {_device()}; {args.trials} trials per search, <= {args.epochs} epochs per trial (patience "
          f"{args.patience}), Bayesian with {args.initial_points} initial random trials, {args.repeats} seed(s)")

    results = {}
    for oracle in oracles:
        for seed in range(args.repeats):
            out = root / f"{oracle}-s{seed}"
            if (out / "search.json").exists():
                raise SystemExit(f"{out} holds a finished search; pass another --out")
            results.setdefault(oracle, []).append(_search(args, oracle, seed, out, data_dir, not args.verbose))
            r = results[oracle][-1]
            print(f"#   {oracle} seed {seed}: {r['n']} trials in {r['seconds']:.0f} s", flush=True)

    def fmt(values):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        if len(values) == 1:
            return f"{values[0]:.4f}"
        return f"{statistics.mean(values):.4f}±{statistics.stdev(values):.4f}"

    header = ["oracle", "trials", "s/trial", "trials/h"] + [f"best AUC@{b}" for b in budgets]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for oracle, runs in results.items():
        n = sum(r["n"] for r in runs)
        seconds = sum(r["seconds"] for r in runs)
        cells = [oracle, str(n), f"{seconds / max(n, 1):.1f}", f"{3600 * n / max(seconds, 1e-9):.0f}"]
        for b in budgets:
            cells.append(fmt([max((s for s in r["scores"][:b] if s is not None), default=None)
                              for r in runs if len(r["scores"]) >= b]))
        print("| " + " | ".join(cells) + " |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
