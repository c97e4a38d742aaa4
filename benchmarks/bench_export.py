"""Serving speed of exported SavedModels on this CPU: each signature beside the Keras model's own predict.

    python benchmarks/bench_export.py [--models lenet,effnet_s] [--jets 100] [--batch 1000] [--repeats 10]
    python benchmarks/bench_export.py --run RUN_DIR          # a real training run instead

For each model a run directory is made as ``python -m jettf.train`` writes it for 002's top tagging setup:
a tagger (:func:`jettf.models.build` with an :class:`jettf.images.ImagePreparation` in front: 40x40
(pt, mass, energy) images over [-1.2, 1.2]^2 centred on the hardest constituent, per-pixel standardization
with a floor, centre crop to 32, random flips in training; weights and statistics untrained -- speed does
not depend on them), exported with :func:`jettf.serving.export_run` and loaded with ``tf.saved_model.load``
(what TF-Serving runs, minus its RPC layer). Jets are real Pythia top/QCD jets (``jettf.generate``, all
constituents, zero-padded to the widest jet).

Rows, per model:

* ``keras predict``: ``tagger.predict(images, batch_size=N)`` on rendered images (Keras' own path; the
  tagger standardizes and crops them itself).
* ``keras predict_on_batch``: the same without predict's per-call setup (how training reports inference).
* ``serving_default``: the SavedModel signature on the same rendered images (the bare tagger).
* ``from_constituents``: the SavedModel signature on raw jets: renders (``render_tf``) and runs the tagger
  in one graph -- the whole job a client would otherwise do.
* ``XLA-compiled tagger``: the tagger (preparation + architecture, no training-only flips) as one
  ``tf.function(jit_compile=True)``.
* ``ONNX Runtime serving_default`` / ``from_constituents``: the ONNX files of ``--format onnx`` in ONNX
  Runtime (CPU provider, as many intra-op threads as cores).
* ``from_constituents via REST JSON``: the same, plus the REST request's JSON: the body built by
  :func:`jettf.serving.make_rest_request`, serialized, parsed and turned into tensors, i.e. the request
  handling a REST client and server pay for on top.

Latency: median wall time of one call on ``--jets`` jets (after warm-up), in ms per 100 jets, with the CPU
time of the process (all threads) beside it, since the machine may be shared. Throughput: jets per wall
second and per CPU second for one call on ``--batch`` jets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _time(fn, repeats: int):
    """(median wall s, median CPU s) of ``fn()`` after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return float(np.median(walls)), float(np.median(cpus))


def _make_run(root: Path, model_name: str) -> Path:
    """A run directory like jettf.train's for 002's top-tagging images (untrained weights and statistics)."""
    import jettf.models as zoo
    from jettf.images import ImagePreparation, ImageSpec

    spec = ImageSpec.effnet_s(40)
    rng = np.random.default_rng(0)
    mean = rng.exponential(1.0, spec.shape).astype(np.float32)
    std = (mean + rng.exponential(1.0, spec.shape)).astype(np.float32)
    prep = ImagePreparation(spec, standardize=True, pixel_mean=mean, pixel_std=std, crop=0.8)
    options = {"preset": "S0"} if model_name == "effnet_s" else {}
    tagger = zoo.build(model_name, 2, preparation=prep, flips="both", class_names=["qcd", "top"], seed=0, **options)
    run = root / f"bench-{model_name}"
    run.mkdir(parents=True)
    config = {"model": model_name, "model_options": options, "task": "binary", "signal": "top",
              "background": "qcd", "standardize": True, "crop": 0.8, "flips": "both"}
    resolved = {"class_names": ["qcd", "top"], "inputs": ["image"], "image_spec": spec.to_dict(),
                "preparation": prep.describe(), "feature_names": [], "feature_spec": None,
                "dataset": "top_tagging_images/effnet_s_40 (benchmark stand-in)", "dataset_fingerprint": None,
                "accelerator": {"backend": "tensorflow"}}
    (run / "config.json").write_text(json.dumps({"config": config, "resolved": resolved}))
    tagger.save(run / "model.keras")
    return run


def _jets(n: int, seed: int = 0):
    from jettf.generate import generate_jets

    batch = generate_jets("top_tagging", (n + 1) // 2, seed)
    constituents = np.stack([batch.pt, batch.eta, batch.phi, batch.energy], axis=-1).astype(np.float32)[:n]
    jet = np.stack([batch.jet_pt, batch.jet_eta, batch.jet_phi, batch.jet_mass], axis=-1).astype(np.float32)[:n]
    return batch.select(slice(0, n)), constituents, jet


def _inference_only(tagger):
    """The tagger without its training-only flip layers (what XLA compiles: no random ops in the graph)."""
    import keras

    import jettf.models as zoo

    inputs = {"image": keras.Input(tagger.input["image"].shape[1:], name="image")}
    prepared = zoo.find_layer(tagger, "image_preparation")(inputs["image"])
    return keras.Model(inputs, zoo.architecture(tagger)({"image": prepared}))


def bench_run(run: Path, out_root: Path, raw, args) -> list:
    import tensorflow as tf

    from jettf.images import ImageSpec, render
    from jettf.serving import export_run, make_rest_request
    from jettf.training import load_tagger
    from jettf.training.run_dir import RunDir

    batch, constituents, jet = raw
    document = RunDir(run).read_config()
    config, resolved = document["config"], document["resolved"]
    if resolved.get("inputs") != ["image"]:
        raise SystemExit(f"{run}: the benchmark times image-only models; inputs are {resolved.get('inputs')}")
    start = time.perf_counter()
    version = export_run(run, out=out_root / run.name, log=lambda m: None, formats=("savedmodel", "onnx"))
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    sig = tf.saved_model.load(str(version)).signatures
    load_s = time.perf_counter() - start
    model = load_tagger(run)
    images = render(batch, ImageSpec.from_dict(resolved["image_spec"]))  # as rendered: the tagger prepares them

    def tile(a, n):
        return np.concatenate([a] * (-(-n // len(a))))[:n]

    def rest(body: str):
        """What REST adds: JSON text -> named tensors (as the server parses a columnar body) -> the signature."""
        request = json.loads(body)
        return sig[request["signature_name"]](**{k: tf.constant(np.asarray(v, np.float32))
                                                 for k, v in request["inputs"].items()})

    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    sessions = {s: onnxruntime.InferenceSession(str(version / f"{s}.onnx"), options, providers=["CPUExecutionProvider"])
                for s in ("serving_default", "from_constituents")}
    inference = _inference_only(model)
    xla = tf.function(lambda x: inference({"image": x}, training=False), jit_compile=True)

    rows = []
    for name, make in (
        ("keras predict", lambda n: (lambda x=tile(images, n): model.predict({"image": x}, batch_size=n, verbose=0))),
        ("keras predict_on_batch", lambda n: (lambda x=tile(images, n): model.predict_on_batch({"image": x}))),
        ("serving_default", lambda n: (lambda x=tf.constant(tile(images, n)): sig["serving_default"](image=x))),
        ("from_constituents", lambda n: (lambda c=tf.constant(tile(constituents, n)), j=tf.constant(tile(jet, n)):
                                         sig["from_constituents"](constituents=c, jet=j))),
        ("XLA-compiled tagger (tf.function, jit_compile)", lambda n: (lambda x=tf.constant(tile(images, n)): xla(x))),
        ("ONNX Runtime serving_default", lambda n: (lambda x=tile(images, n): sessions["serving_default"].run(
            ["probabilities"], {"image": x}))),
        ("ONNX Runtime from_constituents", lambda n: (lambda c=tile(constituents, n), j=tile(jet, n):
                                                       sessions["from_constituents"].run(
                                                           ["probabilities"], {"constituents": c, "jet": j}))),
        ("from_constituents via REST JSON", lambda n: (
            lambda body=json.dumps(make_rest_request("from_constituents", {"constituents": tile(constituents, n),
                                                                           "jet": tile(jet, n)}, columnar=True)):
            rest(body))),
    ):
        wall, cpu = _time(make(args.jets), args.repeats)
        bwall, bcpu = _time(make(args.batch), max(2, args.repeats // 5))
        rows.append({"model": config["model"], "path": name, "ms_per_100": wall * 1e3 * 100 / args.jets,
                     "cpu_ms_per_100": cpu * 1e3 * 100 / args.jets, "jets_per_s": args.batch / bwall,
                     "jets_per_cpu_s": args.batch / max(bcpu, 1e-9)})
    # The signatures agree with Keras on these jets (the tests check 1e-5 on fewer).
    diff = np.abs(sig["from_constituents"](constituents=tf.constant(constituents), jet=tf.constant(jet))
                  ["probabilities"].numpy() - model.predict_on_batch({"image": images})).max()
    rows[-1]["note"] = f"export {export_s:.1f} s, load {load_s:.1f} s, max |from_constituents - keras| {diff:.1e}"
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="lenet,effnet_s", help="zoo models to build and time")
    p.add_argument("--run", type=Path, action="append", help="time these run directories instead")
    p.add_argument("--jets", type=int, default=100, help="jets per latency call")
    p.add_argument("--batch", type=int, default=1000, help="jets per throughput call")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)

    import tensorflow as tf

    raw = _jets(args.jets)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (load average "
          f"{os.getloadavg()[0]:.1f}), TensorFlow {tf.__version__}; {args.jets} real top/QCD jets, "
          f"{raw[1].shape[1]} constituent slots", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.run or [_make_run(Path(tmp), m) for m in args.models.split(",")]
        for run in runs:
            rows += bench_run(Path(run), Path(tmp) / "saved_models", raw, args)
    print(f"| model | path | latency, ms per 100 jets (wall) | CPU ms per 100 jets | jets/s (batch {args.batch}, "
          "wall) | jets per CPU-s | notes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['path']} | {r['ms_per_100']:.1f} | {r['cpu_ms_per_100']:.1f} | "
              f"{r['jets_per_s']:,.0f} | {r['jets_per_cpu_s']:,.0f} | {r.get('note', '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
