"""Dataset builds: jets/s end to end, single process and on Beam's DaskRunner with 1 and 2 workers.

For each dataset (top tagging at the 002 config ``effnet_s_40``: 40x40x3 images, the exact EffNet-S
features; JetNet at the 000 config ``default``: 299x299 images, the default features) it writes
public-layout files (``jettf.io`` writers; synthetic jets with ~50 constituents for top tagging and
30 for JetNet, as in the public files, or Pythia jets with ``--source pythia``), then prints

* where the time goes in one process, per stage of a shard task (read, render, exact features,
  examples + TFDS encoding + deterministic serialization, TFRecord write), best of ``--repeats``;
* the build end to end (planning pass, shard stage, records, statistics pass) single-process, then on
  a Dask LocalCluster of 1 and 2 workers (warm: started and workers' imports and numba kernels done
  before the clock starts; the cold start is a column of its own), each checked byte-identical to
  the single-process build; the CPU-seconds of this process and of the workers, and those of
  everything else on the machine meanwhile (other people's jobs: a figure taken while they ran
  says so); peak RSS of every worker and of this process;
* core-hours for the full public datasets (2.0M top-tagging jets, 880k JetNet jets) at the measured
  rates, and wall hours on this machine with 2 workers.

Shard tasks hold ``--shard-size`` source rows (the builders use 20000 for top tagging and 5000 for
JetNet; the benchmark's files are small, so smaller shards give every worker several tasks, as the
full files do).

    python benchmarks/bench_build.py [--top-jets 4000] [--jetnet-jets 10000] [--shard-size 250]
                                     [--workers 1 2] [--repeats 2] [--source synthetic|pythia]
                                     [--wait-idle SECONDS]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FULL = {"top_tagging_images": 2_000_000, "jetnet_images": 880_000}  # jets in the public datasets
CONFIGS = {"top_tagging_images": "effnet_s_40", "jetnet_images": "default"}


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ------------------------------------------------------------------------------------------- files
def write_files(dataset: str, n_jets: int, folder: Path, source: str, seed: int, workers: int) -> None:
    """Public-layout files of ``n_jets`` jets in total (balanced classes)."""
    from jettf import io
    from tfds_builders.testing import synthetic_jets

    folder.mkdir(parents=True, exist_ok=True)
    if source == "pythia":
        from jettf.generate import generate_sample

        sample = "top_tagging" if dataset == "top_tagging_images" else "jetnet"
        per_class = n_jets // (2 if sample == "top_tagging" else 5)
        generate_sample(sample, per_class, folder, seed=seed, workers=workers, progress=False)
        return
    if dataset == "top_tagging_images":  # the public files' 1.2M / 0.4M / 0.4M proportions
        for i, (name, fraction) in enumerate((("train", 0.6), ("val", 0.2), ("test", 0.2))):
            jets = synthetic_jets(int(n_jets * fraction), io.TOP_TAGGING_CLASSES, seed=seed + i, min_constituents=20,
                                  max_constituents=80, jet_pt=600.0)
            io.write_top_tagging(jets, folder / f"{name}.h5")
    else:
        jets = synthetic_jets(n_jets, io.JETNET_CLASSES, seed=seed, min_constituents=30, max_constituents=30,
                              jet_pt=1000.0)
        io.write_jetnet(jets, folder)


def _use_shard_size(dataset: str, shard_size: int):
    import tfds_builders  # noqa: F401 - registers the builders
    from jettf.data.info import builder_class

    cls = builder_class(dataset)
    configs = cls.builder_configs
    name = CONFIGS[dataset]
    configs[name] = dataclasses.replace(configs[name], shard_size=shard_size)
    return cls, configs[name]


# ------------------------------------------------------------------------------------------ stages
def stage_times(dataset: str, manual: Path, shard_size: int, repeats: int) -> dict:
    """Seconds per stage over every source jet, in this process, best of ``repeats``."""
    import tensorflow as tf
    from tensorflow.core.example import example_pb2
    from tensorflow_datasets.core import example_serializer

    from jettf.data import records
    from jettf.features import compute_features
    from jettf.images import render

    cls, cfg = _use_shard_size(dataset, shard_size)
    builder = cls(config=cfg, data_dir=tempfile.mkdtemp(prefix="bench_build_info_"))
    features_dict = builder.info.features
    serializer = example_serializer.ExampleSerializer(features_dict.get_serialized_info())
    fspec = cfg.resolved_feature_spec()
    ranges = []
    for paths in cls.public_files(manual).values():
        for path in paths:
            n = cls.count_rows(str(path))
            ranges += [(str(path), s, min(s + shard_size, n)) for s in range(0, n, shard_size)]
    warm = cls.read_range(*ranges[0])  # numba kernels compiled (or loaded) before timing
    compute_features(warm.select(np.arange(min(4, len(warm)))), fspec)
    best, n_jets, multiplicity = {}, 0, 0.0
    for _ in range(repeats):
        t = dict.fromkeys(("read", "render", "features", "serialize", "write"), 0.0)
        n_jets, constituents = 0, 0
        out = Path(tempfile.mkdtemp(prefix="bench_build_records_")) / "records.tfrecord"
        with tf.io.TFRecordWriter(str(out)) as writer:
            for path, start, stop in ranges:
                c = time.perf_counter()
                jets = cls.read_range(path, start, stop)
                t["read"] += time.perf_counter() - c
                c = time.perf_counter()
                sparse = render(jets, cfg.image_spec, sparse=True)
                t["render"] += time.perf_counter() - c
                c = time.perf_counter()
                features, _ = compute_features(jets, fspec)
                t["features"] += time.perf_counter() - c
                c = time.perf_counter()
                stored = jets.sort_by_pt().pad_to(cfg.max_constituents)
                serialized = [example_pb2.Example.FromString(serializer.serialize_example(
                    features_dict.encode_example(ex))).SerializeToString(deterministic=True)
                    for ex in records.iter_examples(sparse, features, stored, cls.HAS_PID)]
                t["serialize"] += time.perf_counter() - c
                c = time.perf_counter()
                for record in serialized:
                    writer.write(record)
                t["write"] += time.perf_counter() - c
                n_jets += len(jets)
                constituents += int(jets.n_constituents.sum())
        shutil.rmtree(out.parent, ignore_errors=True)
        multiplicity = constituents / max(n_jets, 1)
        best = t if not best or sum(t.values()) < sum(best.values()) else best
    shutil.rmtree(builder.data_dir_root, ignore_errors=True)
    return {"seconds": best, "jets": n_jets, "multiplicity": multiplicity}


# ------------------------------------------------------------------------------------------ builds
def _warm_worker(dataset: str) -> int:
    """Runs on each Dask worker before timing: imports, and the numba kernels compiled or loaded."""
    import tfds_builders  # noqa: F401
    from jettf.features import compute_features
    from jettf.images import render  # noqa: F401
    from tfds_builders.testing import synthetic_jets
    from jettf.data.info import builder_class

    cfg = builder_class(dataset).builder_configs[CONFIGS[dataset]]
    compute_features(synthetic_jets(4, ("a", "b"), min_constituents=10, max_constituents=20),
                     cfg.resolved_feature_spec())
    return os.getpid()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (/proc/stat), all processes."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_idle(max_wait: float, idle_fraction: float = 0.85) -> float:
    """Wait (up to ``max_wait`` s) until the machine's cores were ``idle_fraction`` idle over 2 s; returns the wait."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        busy = _cpu_busy_seconds()
        time.sleep(2.0)
        if (_cpu_busy_seconds() - busy) / (2.0 * os.cpu_count()) <= 1 - idle_fraction:
            break
    return time.perf_counter() - start


def _timed(build, clients=()) -> dict:
    """Wall seconds of ``build()``, and the CPU-seconds of this process, of the Dask workers and of everything else
    on the machine meanwhile (other people's jobs: the load the figure was taken under)."""
    def worker_cpu():
        return sum(sum(c.run(time.process_time).values()) for c in clients)

    busy, own, workers = _cpu_busy_seconds(), time.process_time(), worker_cpu()
    start = time.perf_counter()
    info = build()
    seconds = time.perf_counter() - start
    own, workers = time.process_time() - own, worker_cpu() - workers
    others = max(0.0, _cpu_busy_seconds() - busy - own - workers)
    return {"info": info, "seconds": seconds, "cpu_driver": own, "cpu_workers": workers, "cpu_others": others}


def run_builds(dataset: str, manual: Path, work: Path, workers_list, repeats: int, shard_size: int,
               idle_wait: float) -> list:
    """Rows: single process, then Dask with each worker count (clusters started and warmed first; the attempts
    interleave the configurations so that a change of load hits them alike). Each row's records are checked
    against the single-process build's."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from dask.distributed import Client, LocalCluster

    import jettf.data as jd

    _use_shard_size(dataset, shard_size)
    name = f"{dataset}/{CONFIGS[dataset]}"
    clusters = {}
    for workers in workers_list:
        cold = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.WARNING)
        client = Client(cluster.scheduler_address)
        client.run(_warm_worker, dataset)
        clusters[workers] = (cluster, client, time.perf_counter() - cold)
    rows = {0: {"how": "single process (no Beam)", "workers": 1, "cold": None, "rss": [], "same": True}}
    for workers, (_, _, cold) in clusters.items():
        rows[workers] = {"how": f"Beam DaskRunner, LocalCluster of {workers}", "workers": workers, "cold": cold,
                         "same": True}
    reference = None
    for attempt in range(repeats):
        for key in rows:
            data = work / f"build{key}_{attempt}"
            waited = wait_for_idle(idle_wait) if idle_wait else 0.0
            if key == 0:
                run = _timed(lambda: jd.build(name, data_dir=str(data), manual_dir=str(manual)))
            else:
                cluster, client, _ = clusters[key]
                options = PipelineOptions([f"--dask_client_address={cluster.scheduler_address}"])
                run = _timed(lambda: jd.build(name, data_dir=str(data), manual_dir=str(manual), beam_runner="dask",
                                              beam_options=options), clients=[client])
            info = run.pop("info")
            if reference is None:
                reference = info
            else:
                rows[key]["same"] = rows[key]["same"] and info.fingerprint() == reference.fingerprint()
                shutil.rmtree(data, ignore_errors=True)
            run["waited"] = waited
            if "seconds" not in rows[key] or run["seconds"] < rows[key]["seconds"]:
                rows[key].update(run)
    for key, (cluster, client, _) in clusters.items():
        rows[key]["rss"] = sorted(v / 1024.0 for v in client.run(
            lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values())
        client.close()
        cluster.close()
    jets = sum(reference.splits.values())
    out = list(rows.values())
    for row in out:
        row["jets"] = jets
        row["jets_per_s"] = jets / row["seconds"]
    return out


# ------------------------------------------------------------------------------------------ report
def report(dataset: str, stages: dict, rows: list, driver_rss: float, print=print) -> None:
    name = f"{dataset}/{CONFIGS[dataset]}"
    jets, seconds = stages["jets"], stages["seconds"]
    total = sum(seconds.values())
    print(f"\n## {name}: {jets} jets, {stages['multiplicity']:.1f} constituents per jet\n")
    print("Stages of the shard tasks in one process (best of the repeats):\n")
    print("| stage | seconds | jets/s | share |")
    print("|---|---|---|---|")
    for stage, s in seconds.items():
        print(f"| {stage} | {s:.2f} | {jets / s if s else float('inf'):,.0f} | {100 * s / total:.0f}% |")
    print(f"| all stages | {total:.2f} | {jets / total:,.0f} | 100% |")
    one = next((r for r in rows if r["workers"] == 1 and "Dask" in r["how"]), None)
    plain = rows[0]
    print("\nBuilds end to end (planning, shard stage, records, statistics), best of the repeats:\n")
    print("| build | wall s | jets/s | vs single process | vs Dask 1 worker | CPU-s driver + workers | CPU-s of "
          "others meanwhile | cold start s | peak RSS per worker MiB | records identical |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        vs_one = f"{r['jets_per_s'] / one['jets_per_s']:.2f}x" if one is not None and "Dask" in r["how"] else "-"
        rss = ", ".join(f"{x:.0f}" for x in r["rss"]) or "-"
        cold = f"{r['cold']:.1f}" if r["cold"] is not None else "-"
        vs_plain = r["jets_per_s"] / plain["jets_per_s"]
        print(f"| {r['how']} | {r['seconds']:.1f} | {r['jets_per_s']:,.0f} | {vs_plain:.2f}x "
              f"| {vs_one} | {r['cpu_driver']:.1f} + {r['cpu_workers']:.1f} | {r['cpu_others']:.1f} | {cold} | {rss} "
              f"| {'yes' if r['same'] else 'NO'} |")
    print(f"\nPeak RSS of this process (the driver: planning, TFDS writer, statistics): {driver_rss:.0f} MiB")
    full = FULL[dataset]
    print(f"\nExtrapolated to the full public dataset ({full:,} jets):\n")
    print("| build | jets per core-hour | core-hours | wall hours on this machine |")
    print("|---|---|---|---|")
    for r in rows:
        cores = max(r["workers"], 1)
        per_core_hour = r["jets_per_s"] / cores * 3600
        wall_hours = full / r["jets_per_s"] / 3600
        print(f"| {r['how']} | {per_core_hour:,.0f} | {full / per_core_hour:.1f} | {wall_hours:.1f} |")
    stage_rate = jets / total * 3600
    print(f"| shard stages alone, one core | {stage_rate:,.0f} | {full / stage_rate:.1f} | - |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--top-jets", type=int, default=4000, help="top-tagging jets in the files (0: skip)")
    p.add_argument("--jetnet-jets", type=int, default=10000, help="JetNet jets in the files (0: skip)")
    p.add_argument("--shard-size", type=int, default=250, help="source rows per shard task")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask LocalCluster sizes")
    p.add_argument("--repeats", type=int, default=2, help="best of N for stages and builds")
    p.add_argument("--source", choices=("synthetic", "pythia"), default="synthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each timed build, wait up to this long for the cores to be 85%% idle (shared machines)")
    p.add_argument("--work-dir", type=Path, default=None, help="files and builds (default: a temporary folder)")
    args = p.parse_args(argv)

    from jettf.cli import quiet_tensorflow

    quiet_tensorflow()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_build_"))
    lines = []  # the tables, printed at the end (workers and TFDS print their own lines while builds run)
    out = lines.append
    out("# Dataset builds: single process and Beam's DaskRunner\n")
    out(f"Machine: {os.cpu_count()} cores ({_cpu()}), Python {platform.python_version()}; "
        f"load average at start {_load()}; source {args.source}; shard tasks of {args.shard_size} rows; "
        f"best of {args.repeats}")
    for dataset, n in (("top_tagging_images", args.top_jets), ("jetnet_images", args.jetnet_jets)):
        if n <= 0:
            continue
        manual = work / dataset / "manual"
        if not manual.is_dir():
            write_files(dataset, n, manual, args.source, args.seed, max(args.workers))
        stages = stage_times(dataset, manual, args.shard_size, args.repeats)
        rows = run_builds(dataset, manual, work / dataset, args.workers, args.repeats, args.shard_size,
                          args.wait_idle)
        report(dataset, stages, rows, _peak_rss_mib(), print=lambda text="": out(text))
        out(f"\nload average after {dataset}: {_load()}")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
