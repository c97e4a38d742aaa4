"""Jet-image rendering throughput on one core: jettf's numpy and TensorFlow renderers beside
per-jet ``np.histogram2d`` (how jetnet's ``to_image`` works) and ``energyflow.utils.pixelate``;
and TFRecord bytes per jet of the two sparse layouts.

    python benchmarks/bench_render.py [--quick] [--records N]

The process pins itself to one CPU (as ``taskset -c``) and TensorFlow to one intra-op and
one inter-op thread. Jets are synthetic: 30 or 200 constituents, Gaussian spread 0.1 around
an axis at random phi. Images: 33x33 pt over [-0.4, 0.4]^2; 40x40 (pt, mass, energy) over
[-1.2, 1.2]^2 centred on the hardest constituent (ImageSpec.effnet_s); 299x299 pt over
[-0.4, 0.4]^2 (ImageSpec.ensemble). The per-jet baselines compute the same images (histogram2d
of pt, E, px, py, pz for the mass channel); pixelate makes pt images only, centred on its
own pt centroid. Rates are jets per CPU second of the pinned process (the machine may be
shared), best of 3 repeats of each method; every method's multiple is against histogram2d
measured in the same run. Peak memory is numpy's traced peak (tracemalloc), inputs excluded,
scaled to 10k jets. "numpy sparse" is the default layout (one entry per constituent for these
additive specs; unique pixels for the mass spec); "numpy sparse, merged" forces unique pixels
(``render(..., merge=True)``, the sort-per-jet path, which is also ``render_tf``'s layout).

Records (``--records N``, N Pythia jets per class from ``jettf.generate``, 0 to skip): the
record each builder writes per jet (``jettf.data.records``: image, constituents, jet, label;
global features as zeros of the right length, which serialize to the same bytes),
serialized with the builder's TFDS features, plus TFRecord framing (16 bytes), for the
merged layout and the default one.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
os.environ.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from energyflow.utils import pixelate  # noqa: E402

from jettf.images import ImageSpec, render, render_tf  # noqa: E402
from jettf.jets import JetBatch, wrap_phi  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

SPECS = {
    "33x33 pt": ImageSpec(33, 0.4),
    "40x40x3 pt/m/E": ImageSpec.effnet_s(40),
    "299x299 pt": ImageSpec.ensemble(),
}


def synthetic_jets(n: int, m: int, seed: int = 0) -> JetBatch:
    rng = np.random.default_rng(seed)
    pt = rng.exponential(20.0, (n, m)) + 0.5
    eta = rng.uniform(-2, 2, (n, 1)) + rng.normal(0, 0.1, (n, m))
    phi = rng.uniform(-np.pi, np.pi, (n, 1)) + rng.normal(0, 0.1, (n, m))
    return JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta))


def per_jet_histogram2d(batch: JetBatch, spec: ImageSpec) -> np.ndarray:
    """The spec's images one jet at a time with np.histogram2d (center None or hardest only)."""
    etarel, phirel, _ = batch.relative()
    out = np.zeros((len(batch), *spec.shape), np.float32)
    grid = dict(bins=spec.npix, range=[[-spec.extent, spec.extent]] * 2)
    for i in range(len(batch)):
        m = batch.mask[i]
        pt, x, y, e = batch.pt[i, m], etarel[i, m], phirel[i, m], batch.energy[i, m]
        if spec.center == "hardest":
            k = np.argmax(pt)
            x, y = x - x[k], wrap_phi(y - y[k])
        for c, name in enumerate(spec.channels):
            if name == "mass":
                eta, phi = batch.eta[i, m], batch.phi[i, m]
                s = [np.histogram2d(x, y, weights=w, **grid)[0] for w in (e, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta))]
                out[i, ..., c] = np.sqrt(np.maximum(s[0] ** 2 - s[1] ** 2 - s[2] ** 2 - s[3] ** 2, 0))
            else:
                out[i, ..., c] = np.histogram2d(x, y, weights={"pt": pt, "energy": e}[name], **grid)[0]
    return out


def per_jet_pixelate(batch: JetBatch, spec: ImageSpec) -> np.ndarray:
    etarel, phirel, _ = batch.relative()
    out = np.zeros((len(batch), *spec.shape), np.float32)
    for i in range(len(batch)):
        m = batch.mask[i]
        rows = np.stack([batch.pt[i, m], etarel[i, m], phirel[i, m], np.zeros(m.sum())], axis=1)
        out[i] = pixelate(rows, npix=spec.npix, img_width=2 * spec.extent, nb_chan=1, norm=False)
    return out


def tf_renderer(spec: ImageSpec, sparse: bool):
    fn = tf.function(lambda *a: render_tf(*a, spec, sparse=sparse), autograph=False)

    def run(batch: JetBatch):
        args = [tf.constant(a) for a in (batch.pt, batch.eta, batch.phi, batch.energy, batch.mask, batch.jet_eta, batch.jet_phi)]
        out = fn(*args)
        return out.index.numpy() if sparse else out.numpy()

    return run


def throughput(fn, batch: JetBatch, chunk: int, min_seconds: float, repeats: int = 3) -> float:
    """Jets per CPU second of ``fn`` over ``batch`` in chunks, after one warm-up chunk, each repeat
    running for ``min_seconds``; the best of ``repeats``. CPU time of this one-core process, so
    other load on the machine counts less (it still slows caches and memory)."""
    chunks = [batch.select(slice(lo, lo + chunk)) for lo in range(0, len(batch), chunk)]
    fn(chunks[0])
    best = 0.0
    for _ in range(repeats):
        done, start = 0, time.process_time()
        while True:
            for part in chunks:
                fn(part)
            done += len(batch)
            elapsed = time.process_time() - start
            if elapsed >= min_seconds:
                break
        best = max(best, done / elapsed)
    return best


def peak_mb_per_10k(fn, batch: JetBatch) -> float:
    tracemalloc.start()
    fn(batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20 * 10_000 / len(batch)


def main(quick: bool, records_per_class: int) -> None:
    min_s = 0.3 if quick else 1.5
    load_start = os.getloadavg()
    rows = []
    for m in (30, 200):
        jets = synthetic_jets(20_000 if m == 30 else 4_000, m)
        slow = jets.select(slice(0, 300 if quick else 1_500))
        for label, spec in SPECS.items():
            dense_chunk = max(1, min(len(jets), int(150e6 / (4 * spec.npix**2 * spec.n_channels))))  # ~150 MB of output
            methods = {
                "histogram2d per jet": (lambda b, s=spec: per_jet_histogram2d(b, s), slow, len(slow)),
                "energyflow pixelate": (lambda b, s=spec: per_jet_pixelate(b, s), slow, len(slow)) if spec.channels == ("pt",) else None,
                "jettf numpy sparse": (lambda b, s=spec: render(b, s, sparse=True), jets, len(jets)),
                "jettf numpy sparse, merged": (lambda b, s=spec: render(b, s, sparse=True, merge=True), jets,
                                               len(jets)),
                "jettf numpy dense": (lambda b, s=spec: render(b, s), jets, dense_chunk),
                "jettf TF sparse": (tf_renderer(spec, True), jets, 2_000),
                "jettf TF dense": (tf_renderer(spec, False), jets, min(dense_chunk, 2_000)),
            }
            base = None
            for method, entry in methods.items():
                if entry is None:
                    rows.append((label, m, method, None, None, None))
                    continue
                fn, batch, chunk = entry
                rate = throughput(fn, batch, chunk, min_s)
                base = base or rate
                memory = peak_mb_per_10k(fn, batch.select(slice(0, min(chunk, 2_000)))) if "numpy" in method else None
                rows.append((label, m, method, rate, rate / base, memory))
                print(f"  {label:15s} M={m:3d} {method:22s} {rate:12,.0f} jets/s", flush=True)
    load_end = os.getloadavg()
    print(f"\nOne core ({_cpu_model()}); numpy {np.__version__}, tensorflow {tf.__version__}; jets per CPU second, "
          f"best of 3; load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_start)} at the start, "
          f"{'/'.join(f'{x:.1f}' for x in load_end)} at the end")
    print("| image | constituents | method | jets/s | x histogram2d | peak MB / 10k jets |")
    print("|---|---:|---|---:|---:|---:|")
    for label, m, method, rate, ratio, memory in rows:
        cells = ["n/a", "", ""] if rate is None else [f"{rate:,.0f}", f"{ratio:,.1f}", "" if memory is None else f"{memory:,.0f}"]
        print(f"| {label} | {m} | {method} | " + " | ".join(cells) + " |")
    if records_per_class:
        record_bytes(records_per_class)


def record_bytes(n_per_class: int) -> None:
    """TFRecord bytes per jet of each builder's default record, merged vs default sparse layout."""
    import dataclasses

    from jettf.data import records
    from jettf.generate import generate_jets
    from tfds_builders.jetnet_images.jetnet_images_dataset_builder import Builder as JetNet
    from tfds_builders.quark_gluon_images.quark_gluon_images_dataset_builder import Builder as QuarkGluon
    from tfds_builders.top_tagging_images.top_tagging_images_dataset_builder import Builder as TopTagging

    setups = [(JetNet, "default", "jetnet"), (QuarkGluon, "pt_33", "quark_gluon"),
              (QuarkGluon, "cnm_33", "quark_gluon"), (TopTagging, "effnet_s_40", "top_tagging")]
    samples = {}
    print(f"\nTFRecord bytes per jet ({n_per_class} Pythia jets per class, seed 3, generator level)")
    print("| dataset/config | image | merged: bytes/jet | entries/jet | default: bytes/jet | entries/jet | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for builder, name, sample in setups:
        if sample not in samples:
            samples[sample] = generate_jets(sample, n_per_class, seed=3)
        jets = samples[sample]
        cfg = next(c for c in builder.BUILDER_CONFIGS if c.name == name)
        if sample == "jetnet":  # JetNet files keep the 30 hardest particles
            jets = jets.sort_by_pt().pad_to(30)
        jets = dataclasses.replace(jets, labels=np.minimum(jets.labels, len(builder.CLASS_NAMES) - 1))
        n_features = len(cfg.resolved_feature_spec().names())
        layout = records.RecordLayout(cfg.image_spec.npix, cfg.image_spec.n_channels, n_features,
                                      cfg.max_constituents, builder.HAS_PID)
        features = records.tfds_features(layout, builder.CLASS_NAMES)
        stored = jets.sort_by_pt().pad_to(cfg.max_constituents)
        cells = []
        for merge in (True, None):
            sparse = render(jets, cfg.image_spec, sparse=True, merge=merge)
            examples = records.iter_examples(sparse, np.zeros((len(jets), n_features), np.float32), stored,
                                             builder.HAS_PID)
            size = np.mean([len(features.serialize_example(e)) + 16 for e in examples])
            cells.append((size, sparse.count.mean()))
        (merged, k_merged), (default, k_default) = cells
        spec = cfg.image_spec
        print(f"| {builder.name}/{name} | {spec.npix}x{spec.npix} {'+'.join(spec.channels)} | {merged:,.0f} | "
              f"{k_merged:.1f} | {default:,.0f} | {k_default:.1f} | {default / merged:.2f} |")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jets and shorter timing, for a smoke test")
    parser.add_argument("--records", type=int, default=100, metavar="N",
                        help="Pythia jets per class for the record-bytes table (0: skip)")
    args = parser.parse_args()
    main(args.quick, args.records)
