"""004's networks through the toolkit's own path: TFDS builders ``electron_images`` / ``muon_images`` ->
``python -m jettf.train`` (the presets' settings) -> test AUCs beside 004 Tables 3.1 and 4.1.

    python benchmarks/bench_lepton_train.py --electrons DIR --muons DIR [--data-dir DIR] [--out runs/bench_lepton]

``DIR`` holds ``electrons.h5`` / ``muons.h5`` (``python -m jettf.generate electrons|muons --n-jets N --out DIR``).
Each network is one ``jettf.train`` run (a subprocess, timed: dataset build included for the first run of a
dataset). Prints the machine and a markdown table: test AUC with its 95% bootstrap interval, the AUC weighted with
the stored per-candidate weights, the wall time, and 004's AUC. ``python -m jettf.calo`` runs the same networks
in one process with paired intervals for the orderings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

#: (dataset, label, extra arguments, 004's AUC): the networks of 004 Tables 3.1 and 4.1 that one trainer run makes.
RUNS = [
    ("electron_images", "CNN, ECAL + HCAL images", ["--model", "calo_cnn"], 0.972),
    ("electron_images", "CNN, images + 7 features + mass", ["--model", "calo_cnn", "--global-features"], 0.973),
    ("electron_images", "dense, 7 features + mass", ["--model", "dense", "--global-features"], 0.956),
    ("muon_images", "CNN, 32x32 image", ["--model", "calo_cnn"], 0.842),
    ("muon_images", "PFN, cells", ["--model", "pfn"], 0.848),
    ("muon_images", "EFN, cells", ["--model", "efn"], 0.843),
    ("muon_images", "dense, 18 isolation cones", ["--model", "dense", "--global-features"], 0.794),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--electrons", type=Path, help="folder with electrons.h5")
    p.add_argument("--muons", type=Path, help="folder with muons.h5")
    p.add_argument("--data-dir", default=None, help="where the datasets are built (default $JETTF_DATA_DIR or ./data)")
    p.add_argument("--out", type=Path, default=Path("runs/bench_lepton"))
    args = p.parse_args(argv)
    folders = {"electron_images": args.electrons, "muon_images": args.muons}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average at start "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for dataset, label, extra, paper in RUNS:
        if folders[dataset] is None:
            continue
        out = args.out / f"{dataset}-{'-'.join(a.strip('-') for a in extra)}"
        command = [sys.executable, "-m", "jettf.train", "--task", "binary", "--dataset", dataset, *extra,
                   "--manual-dir", str(folders[dataset]), "--out", str(out)]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        test = json.loads((out / "metrics.json").read_text())["test"]
        low, high = test["ci"]["auc"]
        rows.append(f"| {dataset} | {label} | {test['auc']:.4f} [{low:.4f}, {high:.4f}] | "
                    f"{test['weighted']['auc']:.4f} | {test['n_jets']:,} | {seconds:.0f} | {paper:.3f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print("| dataset | network | test AUC [95% CI] | weighted AUC | test candidates | wall s (train + test) | 004 |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"# load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
