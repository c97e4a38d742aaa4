"""Input-pipeline throughput: TFRecords -> batches ready for the model, in jets/s, on this machine.

    python benchmarks/bench_pipeline.py [--n-jets 4000] [--data-dir /tmp/jettf-bench] [--seconds 20]

Builds (once, then reuses) two datasets from synthetic jets written in the public
layouts -- the jet content does not matter for throughput, the number of
constituents and pixels per jet does, so the jets carry realistic multiplicities:

- ``top_tagging_images/quick-n<N>``: 40x40x3 (pt, mass, energy), ~50 constituents;
  002's preparation: standardization, crop 40 -> 32 (then random flips in the model).
- ``jetnet_images/default-n<N>``: 299x299 pT_rel, 30 constituents, as the ensemble
  (000) takes it.

Both placements of the one :class:`jettf.images.ImagePreparation` layer are measured:
``host`` (tf.data densifies with the layer; the model then standardizes and crops) and
``device`` (tf.data only parses; the model's layer densifies, standardizes and crops).
For each it prints jets/s of the pipeline alone (iterating the tf.data dataset, nothing
else running), the CPU rate of the model-side part of the layer (what the training step
adds), the bytes per jet that cross to the device, and TFRecord bytes per jet (sparse as
stored, and dense as a float list, serialized for comparison), beside the rates a GPU
consumes (ENVIRONMENT.md: ~1.8k img/s for the ensemble, ~84k img/s for EffNet-S S0).
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


def _layer_rate(layer, ds, seconds: float) -> float:
    """jets/s of the model-side ImagePreparation step on this CPU (a compiled function, as in the train step)."""
    import tensorflow as tf

    fn = tf.function(lambda x: layer(x), jit_compile=False)
    batches = [x["image"] if "image" in x else {k: x[k] for k in ("image_index", "image_values")}
               for x, _ in ds.take(4)]
    for x in batches:
        fn(x).numpy()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for x in batches:
            fn(x).numpy()
            n += int(next(iter(x.values())).shape[0] if isinstance(x, dict) else x.shape[0])
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

    from jettf.images import ImagePreparation

    rows = []
    common = dict(training=True, shuffle=True, repeat=True, seed=0)
    setups = (("40x40x3 std+crop32 (002)", top, dict(standardize=True, crop=0.8), 1024, "top"),
              ("299x299x1 pT_rel (000)", jetnet, {}, 128, "jetnet"))
    for name, info, options, batch, key in setups:
        prep = ImagePreparation.from_dataset(info, **options)
        for densify in ("host", "device"):
            ds = jd.make_dataset(info, "train", batch_size=batch, densify=densify == "host", **common)
            rate, cpu = _rate(ds, args.seconds)
            layer = _layer_rate(prep, ds, args.seconds / 2)
            to_device = (4 * int(np.prod(info.image_spec.shape)) if densify == "host"
                         else info.max_pixels * (4 + 4 * info.image_spec.n_channels))
            rows.append((name, densify, batch, rate, cpu, layer, to_device, key))

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end; TensorFlow {tf.__version__}; "
          f"{args.n_jets} jets/class; synthetic jets\n")
    print("| images | densify | batch | pipeline jets/s (wall) | CPU us/jet | jets/s per CPU-second | "
          "model-side preparation on this CPU, jets/s | bytes/jet to device | GPU consumes (img/s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, densify, batch, rate, cpu, layer, to_device, key in rows:
        gpu = GPU_RATES[key]
        print(f"| {name} | {densify} | {batch} | {rate:,.0f} | {cpu:.0f} | {1e6 / cpu:,.0f} | {layer:,.0f} | "
              f"{to_device:,} | {gpu[1]:,} ({gpu[0]}) |")
    print("\n| dataset | TFRecord bytes/jet, sparse (stored) | dense image as float list | ratio |")
    print("|---|---|---|---|")
    for info, shape in ((top, (40, 40, 3)), (jetnet, (299, 299, 1))):
        sparse, dense = _record_bytes(info, shape)
        print(f"| {info.name} ({'x'.join(map(str, shape))}) | {sparse:,.0f} | {dense:,.0f} | {dense / sparse:,.0f}x |")


if __name__ == "__main__":
    main()
