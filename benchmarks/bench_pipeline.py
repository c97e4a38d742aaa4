"""Input-pipeline throughput: TFRecords -> batches ready for the model, in jets/s, on this machine.

    python benchmarks/bench_pipeline.py [--n-jets 4000] [--data-dir /tmp/jettf-bench] [--seconds 20]

Builds (once, then reuses) two datasets from synthetic jets written in the public
layouts -- the jet content does not matter for throughput, the number of
constituents and pixels per jet does, so the jets carry realistic multiplicities:

- ``top_tagging_images/quick-n<N>``: 40x40x3 (pt, mass, energy), ~50 constituents;
  measured with 002's preparation: standardization, crop 40 -> 32, random flips.
- ``jetnet_images/default-n<N>``: 299x299 pT_rel, 30 constituents; measured as the
  ensemble (000) takes it: 299x299x3 (replicated), dense on the host vs sparse
  for the device (``SparseImagePrep`` in the model).

For each it prints jets/s of the pipeline alone (iterating the tf.data dataset,
nothing else running), the CPU cost of the model-side densify layer when it runs
on this CPU, the bytes per jet that cross to the device, and TFRecord bytes per jet
(sparse as stored, and dense as a float list, serialized for comparison), beside
the rates a GPU consumes (ENVIRONMENT.md: ~1.8k img/s for the ensemble, ~84k img/s
for EffNet-S S0).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GPU_RATES = {"top": ("EffNet-S S0 training, H100 bf16 (ENVIRONMENT.md)", 84_000),
             "jetnet": ("ResNet50+InceptionV3 ensemble, H100 bf16, device-resident b256 (ENVIRONMENT.md)", 1_820)}


def _write_sources(root: Path, n_jets: int) -> dict:
    """Synthetic jets in the public layouts (jettf.io writers)."""
    from jettf import io
    from tfds_builders.testing import synthetic_jets

    top, jetnet = root / "top_manual", root / "jetnet_manual"
    if not (top / "test.h5").exists():
        # 1.2 : 0.4 : 0.4 like the public files; n_jets per class in total.
        for i, (name, share) in enumerate((("train", 0.6), ("val", 0.2), ("test", 0.2))):
            jets = synthetic_jets(2 * int(share * n_jets), io.TOP_TAGGING_CLASSES, seed=i, max_constituents=90,
                                  min_constituents=15, jet_pt=600.0, width=0.25)
            io.write_top_tagging(jets, top / f"{name}.h5")
    if not (jetnet / "z.hdf5").exists():
        jets = synthetic_jets(5 * n_jets, io.JETNET_CLASSES, seed=0, max_constituents=30, min_constituents=30,
                              jet_pt=1000.0)
        io.write_jetnet(jets, jetnet)
    return {"top": top, "jetnet": jetnet}


def _rate(ds, seconds: float, warmup_batches: int = 5) -> tuple:
    """(jets/s, process CPU microseconds per jet, all threads) iterating ``ds`` for about ``seconds``."""
    it = iter(ds)
    for _ in range(warmup_batches):
        next(it)
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        x, y = next(it)
        n += int(y.shape[0])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n / wall, 1e6 * cpu / n


def _layer_rate(prep, ds, seconds: float) -> float:
    """jets/s of SparseImagePrep on this CPU (what the device does when densify='device')."""
    import tensorflow as tf

    import jettf.data as jd

    layer = jd.SparseImagePrep.from_prep(prep)
    fn = tf.function(lambda a, b, c: layer([a, b, c]), jit_compile=False)
    batches = [x for x, _ in ds.take(4)]
    for x in batches:
        fn(x["image_index"], x["image_values"], x["image_flips"]).numpy()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for x in batches:
            fn(x["image_index"], x["image_values"], x["image_flips"]).numpy()
            n += int(x["image_index"].shape[0])
    return n / (time.perf_counter() - start)


def _record_bytes(info, prep_dense_shape) -> tuple:
    """(sparse bytes per jet as stored, dense bytes per jet if the image were stored as a float list)."""
    import tensorflow as tf

    split = info.builder.info.splits["train"]
    sparse = split.num_bytes / split.num_examples
    files = [p for p, _, _ in info.file_instructions("train")]
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(files))).numpy())
    dense_example = tf.train.Example()
    dense_example.CopyFrom(example)
    for key in ("image_index", "image_values"):
        del dense_example.features.feature[key]
    dense_example.features.feature["image"].float_list.value.extend(np.zeros(int(np.prod(prep_dense_shape))))
    return sparse, sparse - len(example.SerializeToString()) + len(dense_example.SerializeToString())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-jets", type=int, default=4000, help="jets per class in each benchmark dataset")
    parser.add_argument("--data-dir", default="/tmp/jettf-bench")
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring time per row")
    args = parser.parse_args()

    import tensorflow as tf

    import jettf.data as jd

    root = Path(args.data_dir)
    manual = _write_sources(root, args.n_jets)
    top = jd.build("top_tagging_images/quick", data_dir=str(root / "data"), manual_dir=str(manual["top"]),
                   n_jets=args.n_jets)
    jetnet = jd.build("jetnet_images/default", data_dir=str(root / "data"), manual_dir=str(manual["jetnet"]),
                      n_jets=args.n_jets)

    rows = []
    common = dict(training=True, shuffle=True, repeat=True, seed=0)
    # 002: 40x40x3, standardize, crop 32, flips.
    for densify, batch in (("host", 1024), ("device", 1024)):
        prep = jd.image_prep(top, standardize=True, crop=True, densify=densify)
        ds = jd.make_dataset(top, "train", batch_size=batch, prep=prep, flips="both", **common)
        rate, cpu = _rate(ds, args.seconds)
        layer = _layer_rate(prep, ds, args.seconds / 2) if densify == "device" else None
        rows.append(("40x40x3 std+crop32+flips", densify, batch, rate, cpu, layer, prep, "top"))
    # 000: 299x299 pT_rel replicated to 3 channels.
    for densify, batch in (("host", 128), ("device", 128)):
        prep = jd.image_prep(jetnet, to_rgb="replicate", densify=densify)
        ds = jd.make_dataset(jetnet, "train", batch_size=batch, prep=prep, **common)
        rate, cpu = _rate(ds, args.seconds)
        layer = _layer_rate(prep, ds, args.seconds / 2) if densify == "device" else None
        rows.append(("299x299x3 (replicated)", densify, batch, rate, cpu, layer, prep, "jetnet"))

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end; TensorFlow {tf.__version__}; "
          f"{args.n_jets} jets/class; synthetic jets\n")
    print("| images | densify | batch | pipeline jets/s (wall) | CPU us/jet | jets/s per CPU-second | "
          "densify layer on this CPU, jets/s | bytes/jet to device | GPU consumes (img/s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, densify, batch, rate, cpu, layer, prep, key in rows:
        if densify == "host":
            to_device = 4 * int(np.prod(prep.output_shape))
        else:
            to_device = prep.max_pixels * (4 + 4 * prep.n_channels) + 8
        gpu = GPU_RATES[key]
        print(f"| {name} | {densify} | {batch} | {rate:,.0f} | {cpu:.0f} | {1e6 / cpu:,.0f} | "
              f"{'-' if layer is None else f'{layer:,.0f}'} | {to_device:,} | {gpu[1]:,} ({gpu[0]}) |")
    print("\n| dataset | TFRecord bytes/jet, sparse (stored) | dense image as float list | ratio |")
    print("|---|---|---|---|")
    for info, shape in ((top, (40, 40, 3)), (jetnet, (299, 299, 1))):
        sparse, dense = _record_bytes(info, shape)
        print(f"| {info.name} ({'x'.join(map(str, shape))}) | {sparse:,.0f} | {dense:,.0f} | {dense / sparse:,.0f}x |")


if __name__ == "__main__":
    main()
