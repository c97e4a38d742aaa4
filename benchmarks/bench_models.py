"""Model-zoo benchmark: parameters, FLOPs per jet, training throughput and inference latency per 100 jets.

    python benchmarks/bench_models.py                                  # every entry, heavy ones timed only on GPU
    python benchmarks/bench_models.py --models effnet_s:S0,lenet:28 --batch-size 512 --steps 30
    KERAS_BACKEND=jax python benchmarks/bench_models.py --models paper --mixed-precision --heavy yes
    KERAS_BACKEND=jax python benchmarks/bench_models.py --models ensemble,effnet_s:S0 --mixed-precision --xla \
        --heavy yes --devices 1,all --batch-size 128        # 1 and N GPUs, data parallel (setup_accelerator)

Columns
-------
params        ``model.count_params()`` (trainable + non-trainable, as Keras and the papers count).
paper         the paper's parameter count where it gives one (002 Table 2 for EffNet-S and LeNet; 002 quotes
              610K for "DeepTop", the larger CNN of the top-tagging comparison, not the minimal one built here).
MFLOP/jet     forward FLOPs per jet = 2 x multiply-accumulates of Conv/Dense layers, computed analytically per
              layer (``jettf.models.count_flops``; elementwise ops, BN, pooling not counted). A training step is
              about 3x. With ``--xla-flops`` on JAX, XLA's own cost analysis of the compiled forward is printed too
              (it also counts elementwise ops).
train img/s   ``model.fit`` on random host batches of ``--batch-size`` (Adam, categorical cross-entropy) after
              a warm-up (compilation) epoch; ``--steps`` timed steps.
ms/100        inference latency for a batch of 100 jets through a compiled forward function: ``jax.jit`` of
              ``model.stateless_call`` on JAX, ``tf.function`` (``jit_compile=--xla``) on TensorFlow; inputs
              already on the device, median of ``--latency-reps`` calls, including the wait for the result.
              TensorFlow uses XLA only with an accelerator unless ``--xla``/``--no-xla`` is given.
              This excludes ``predict``'s per-call overhead. 002's figures (GTX 1080 Ti) are shown beside.

devices       with ``--devices 1,4`` (or ``1,all``): ``train img/s`` once per device count, data-parallel through
              ``jettf.training.setup_accelerator(devices=N)`` (``keras.distribution.DataParallel`` on JAX,
              ``MirroredStrategy`` on TensorFlow, as ``python -m jettf.train --devices N``), at ``--batch-size``
              jets per device (global batch N x batch size); ``ms/100`` is timed on one device.

Heavy entries (the ResNet50 + InceptionV3 ensemble at 299 px, ~19 GFLOP per jet) are only timed with
``--heavy yes`` or when an accelerator is visible (``--heavy auto``, default); their params/FLOPs are always
printed. ``--mixed-precision`` sets Keras' ``mixed_bfloat16`` policy (outputs stay float32).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import jettf.models as zoo  # noqa: E402
from jettf.models.smoke import random_constituents  # noqa: E402

N_GLOBAL_002 = 53  # 002's global-feature list: 4 + 1 + 15 + 6 + 4 + 4 + 9 + 4 + 4 + 2

# label -> build arguments and the paper's figures (params, inference ms per 100 jets on a GTX 1080 Ti).
ENTRIES: dict[str, dict] = {
    "ensemble": dict(name="ensemble", n_classes=5, input_shape=(299, 299, 3), heavy=True),
    "ensemble_resnet50": dict(
        name="ensemble", n_classes=5, input_shape=(299, 299, 3), options=dict(branches="resnet50"), heavy=True
    ),
    "ensemble_inception_v3": dict(
        name="ensemble", n_classes=5, input_shape=(299, 299, 3), options=dict(branches="inception_v3"), heavy=True
    ),
}
for _p, (_res, _pp, _ms, _ppg, _msg) in {
    "S0": (36, 158e3, 7.3, 242e3, 8.2),
    "S1": (40, 184e3, 8.0, 276e3, 7.9),
    "S2": (48, 215e3, 8.7, 315e3, 8.4),
    "S3": (56, 258e3, 9.6, 368e3, 10.0),
    "S4": (64, 305e3, 10.6, 422e3, 11.4),
}.items():
    ENTRIES[f"effnet_s:{_p}"] = dict(
        name="effnet_s", input_shape=(_res, _res, 3), options=dict(preset=_p), paper_params=_pp, paper_ms=_ms
    )
    ENTRIES[f"effnet_s+gf:{_p}"] = dict(
        name="effnet_s", input_shape=(_res, _res, 3), options=dict(preset=_p), n_global=N_GLOBAL_002,
        paper_params=_ppg, paper_ms=_msg,
    )  # fmt: skip
for _s, (_pp, _ms, _ppg, _msg) in {28: (428e3, 5.7, 485e3, 5.7), 32: (653e3, 6.1, 710e3, 6.1),
                                   40: (1253e3, 6.4, 1310e3, 6.6)}.items():  # fmt: skip
    ENTRIES[f"lenet:{_s}"] = dict(name="lenet", input_shape=(_s, _s, 3), paper_params=_pp, paper_ms=_ms)
    ENTRIES[f"lenet+gf:{_s}"] = dict(
        name="lenet", input_shape=(_s, _s, 3), n_global=N_GLOBAL_002, paper_params=_ppg, paper_ms=_msg
    )
ENTRIES.update(
    {
        "resnet15": dict(name="resnet15", input_shape=(125, 125, 3)),
        "deeptop": dict(name="deeptop", input_shape=(37, 37, 1), paper_params=610e3),
        "calo_cnn": dict(name="calo_cnn", input_shape=(31, 31, 1)),
        "pfn": dict(name="pfn", input_shape=(30, 4)),
        "efn": dict(name="efn", input_shape=(30, 4)),
    }
)
GROUPS = {
    "all": list(ENTRIES),
    "paper": ["ensemble"] + [f"effnet_s:S{i}" for i in range(5)] + ["lenet:28", "lenet:32", "lenet:40", "resnet15"],
    "small": [k for k, v in ENTRIES.items() if not v.get("heavy")],
}


def accelerator_visible() -> bool:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


def make_batch(entry: dict, n: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    kind = zoo.info(entry["name"]).input_kind
    shape = entry["input_shape"]
    if kind == "constituents":
        x = {"constituents": random_constituents(n, shape[0], rng)}
    else:
        x = {"image": rng.random((n, *shape), dtype="float32")}
    if entry.get("n_global"):
        x["global_features"] = rng.normal(size=(n, entry["n_global"])).astype("float32")
    k = entry.get("n_classes", 2)
    y = keras.utils.to_categorical(rng.integers(0, k, n), k).astype("float32")
    return x, y


def build(entry: dict) -> keras.Model:
    return zoo.build(
        entry["name"],
        entry.get("n_classes", 2),
        input_shape=entry["input_shape"],
        n_global_features=entry.get("n_global", 0),
        seed=0,
        **entry.get("options", {}),
    )


def train_throughput(model, entry, batch_size, steps, xla, steps_per_execution, rng) -> float:
    """Images (jets) per second of ``model.fit`` on random host batches, after a compile epoch."""
    n_data = min(steps, 8)
    x, y = make_batch(entry, batch_size * n_data, rng)
    epochs = max(1, math.ceil(steps / n_data))
    jit = xla if keras.backend.backend() == "tensorflow" else "auto"
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss="categorical_crossentropy",
        jit_compile=jit,
        steps_per_execution=steps_per_execution,
    )
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # compile + warm-up
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    dt = time.perf_counter() - t0
    return batch_size * n_data * epochs / dt


def compiled_forward(model, xla: bool):
    """A compiled inference function ``f(x) -> probabilities`` and a converter of numpy inputs to device."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def fwd(tv, ntv, x):
            y, _ = model.stateless_call(tv, ntv, x, training=False)
            return y

        def call(x):
            return fwd(tv, ntv, x).block_until_ready()

        def to_device(x):
            return {k: jnp.asarray(v) for k, v in x.items()}

        call.lowered = lambda x: fwd.lower(tv, ntv, x)
        return call, to_device
    if backend == "tensorflow":
        import tensorflow as tf

        tf_fwd = tf.function(lambda x: model(x, training=False), jit_compile=bool(xla), reduce_retracing=True)

        def call(x):
            return tf_fwd(x).numpy()

        def to_device(x):
            return {k: tf.constant(v) for k, v in x.items()}

        return call, to_device
    raise SystemExit(f"bench_models: backend {backend!r} is not supported (use tensorflow or jax)")


def latency_ms_per_100(model, entry, xla, reps, rng, want_xla_flops=False):
    call, to_device = compiled_forward(model, xla)
    x, _ = make_batch(entry, 100, rng)
    xd = to_device(x)
    call(xd)  # compile
    call(xd)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call(xd)
        times.append(time.perf_counter() - t0)
    xla_mflops = None
    if want_xla_flops and hasattr(call, "lowered"):
        cost = call.lowered(xd).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        if cost and "flops" in cost:
            xla_mflops = float(cost["flops"]) / 100 / 1e6
    return 1e3 * statistics.median(times), xla_mflops


def fmt_params(n):
    return "-" if n is None else (f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="jettf model-zoo benchmark", formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default="all",
                    help="comma-separated entries or groups (all, paper, small); entries: " + ", ".join(ENTRIES))
    ap.add_argument("--batch-size", type=int, default=256, help="training batch size (default 256)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps (default 20)")
    ap.add_argument("--steps-per-execution", type=int, default=1)
    ap.add_argument("--latency-reps", type=int, default=30, help="timed inference calls (median reported)")
    ap.add_argument("--mixed-precision", action="store_true", help="Keras mixed_bfloat16 policy")
    ap.add_argument("--xla", action=argparse.BooleanOptionalAction, default=None,
                    help="XLA (jit_compile) on TensorFlow; default: on when an accelerator is visible, off on CPU\n"
                         "(XLA:CPU runs EffNet-S's depthwise convolutions ~10x slower than TF's oneDNN kernels).\n"
                         "JAX always compiles with XLA.")
    ap.add_argument("--heavy", choices=("auto", "yes", "no"), default="auto",
                    help="time heavy entries (ensemble): auto = only when an accelerator is visible")
    ap.add_argument("--no-timing", action="store_true", help="only parameters and FLOPs")
    ap.add_argument("--xla-flops", action="store_true", help="also print XLA cost-analysis FLOPs (JAX only)")
    ap.add_argument("--json", default=None, help="write the rows to this JSON file")
    ap.add_argument("--devices", default=None,
                    help="comma-separated device counts for train img/s, data parallel, e.g. 1,all (all = every\n"
                         "visible GPU); --batch-size is then per device")
    args = ap.parse_args(argv)  # fmt: skip

    labels = []
    for tok in (t.strip() for t in args.models.split(",") if t.strip()):
        if tok in GROUPS:
            labels += [lab for lab in GROUPS[tok] if lab not in labels]
        elif tok in ENTRIES:
            labels.append(tok) if tok not in labels else None
        else:
            ap.error(f"--models: unknown entry {tok!r}; choose from {', '.join(list(GROUPS) + list(ENTRIES))}")
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    accel = accelerator_visible()
    if args.xla is None:
        args.xla = accel
    device_counts = [None]
    if args.devices:
        from jettf.training.accelerate import setup_accelerator

        tokens = [t.strip() for t in args.devices.split(",") if t.strip()]
        everything = setup_accelerator(bool(args.mixed_precision), bool(args.xla)).devices if "all" in tokens else 1
        device_counts = sorted({everything if t == "all" else int(t) for t in tokens})
        # The most devices first: TensorFlow's logical CPU devices exist only if made before its runtime starts.
        setup_accelerator(bool(args.mixed_precision), bool(args.xla), devices=device_counts[-1])
    time_heavy = args.heavy == "yes" or (args.heavy == "auto" and accel)
    backend = keras.backend.backend()
    import platform

    print(
        f"# backend={backend} accelerator={accel} policy={keras.mixed_precision.global_policy().name} "
        f"xla={args.xla if backend == 'tensorflow' else True} batch={args.batch_size} steps={args.steps} "
        f"cpu_count={os.cpu_count()} host={platform.node() or '?'} keras={keras.__version__}",
        flush=True,
    )
    header = (
        f"{'model':<22} {'input':>12} {'params':>9} {'paper':>8} {'MFLOP/jet':>10} "
        f"{'train img/s':>11} {'ms/100':>8} {'paper ms/100':>12}" + (f" {'XLA MFLOP':>10}" if args.xla_flops else "")
        + (f" {'devices':>7}" if args.devices else "")
    )
    print(header)
    print("-" * len(header))
    rows = []
    rng = np.random.default_rng(0)
    for label, n_devices in ((label, n) for label in labels for n in device_counts):
        entry = ENTRIES[label]
        keras.backend.clear_session()
        scope, batch_size = contextlib.nullcontext, args.batch_size
        if n_devices is not None:  # data parallel over n_devices, batch size per device
            from jettf.training.accelerate import setup_accelerator

            scope = setup_accelerator(bool(args.mixed_precision), bool(args.xla), devices=n_devices).scope
            batch_size = args.batch_size * n_devices
        with scope():
            model = build(entry)
        params = model.count_params()
        mflops = zoo.count_flops(model) / 1e6
        train, lat, xla_mf = None, None, None
        if not args.no_timing and (time_heavy or not entry.get("heavy")):
            if n_devices in (None, 1):
                lat, xla_mf = latency_ms_per_100(model, entry, args.xla, args.latency_reps, rng, args.xla_flops)
            with scope():
                train = train_throughput(
                    model, entry, batch_size, args.steps, args.xla, args.steps_per_execution, rng
                )
        shape = "x".join(str(d) for d in entry["input_shape"])
        if entry.get("n_global"):
            shape += f"+{entry['n_global']}"
        row = dict(
            model=label, input=shape, params=params, paper_params=entry.get("paper_params"), mflops_per_jet=mflops,
            train_img_per_s=train, infer_ms_per_100=lat, paper_ms_per_100=entry.get("paper_ms"),
            xla_mflops_per_jet=xla_mf, backend=backend, accelerator=accel,
            policy=keras.mixed_precision.global_policy().name, batch_size=batch_size, devices=n_devices,
        )  # fmt: skip
        rows.append(row)
        line = (
            f"{label:<22} {shape:>12} {params:>9,d} {fmt_params(entry.get('paper_params')):>8} {mflops:>10.2f} "
            f"{'-' if train is None else f'{train:,.0f}':>11} {'-' if lat is None else f'{lat:.2f}':>8} "
            f"{'-' if entry.get('paper_ms') is None else entry['paper_ms']:>12}"
        )
        if args.xla_flops:
            line += f" {'-' if xla_mf is None else f'{xla_mf:.2f}':>10}"
        if args.devices:
            line += f" {n_devices:>7}"
        print(line, flush=True)
    if args.json:
        from jettf.utils import write_json

        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
