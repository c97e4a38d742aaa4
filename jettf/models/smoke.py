"""Tiny configurations of every registered model and a build / train-one-step / save-load check.

Used by ``tests/test_models.py`` in-process (TensorFlow) and in one subprocess per other backend:

    KERAS_BACKEND=jax python -m jettf.models.smoke [--models a,b] [--no-round-trip ensemble] [--out result.json]

prints (and writes) a JSON list with one record per model: parameter count, loss after one ``fit`` step,
output dtype, and the largest difference between predictions before and after a ``.keras`` round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import keras
import numpy as np

__all__ = ["TINY", "tiny_inputs", "tiny_model", "forward", "check_model", "check_tagger", "run"]

#: name -> tiny build arguments (fast on 2 CPU cores; every model gets 2 global features).
TINY = {
    # InceptionV3's minimum input is 75; ResNet50's branch is resized to 64 (exercises the Resizing path).
    "ensemble": dict(n_classes=3, input_shape=(75, 75, 3), options=dict(resnet50_input_size=64), batch=2),
    "effnet_s": dict(n_classes=2, input_shape=(28, 28, 3), options=dict(preset="S0")),
    "lenet": dict(n_classes=2, input_shape=(28, 28, 3), options={}),
    "resnet15": dict(n_classes=2, input_shape=(32, 32, 3), options={}),
    "deeptop": dict(n_classes=2, input_shape=(16, 16, 1), options={}),
    "calo_cnn": dict(
        n_classes=2,
        input_shape=(16, 16, 2),
        options=dict(conv_blocks=2, filters=8, dense_layers=1, units=16, dropout=0.1),
    ),
    "dense": dict(n_classes=2, input_shape=None, options=dict(dense_layers=2, units=8, dropout=0.1)),
    "pfn": dict(n_classes=2, input_shape=(12, 4), options=dict(phi_sizes=(16, 16), f_sizes=(16,))),
    "efn": dict(n_classes=2, input_shape=(12, 4), options=dict(phi_sizes=(16, 16), f_sizes=(16,))),
}
N_GLOBAL = 2


def random_constituents(n: int, m: int, rng: np.random.Generator, n_real=None) -> np.ndarray:
    """Zero-padded (pt, eta, phi, energy) [n, m, 4]; phi near the +-pi seam to exercise wrapping."""
    out = np.zeros((n, m, 4), "float32")
    for i in range(n):
        k = int(n_real[i]) if n_real is not None else int(rng.integers(3, m + 1))
        pt = np.sort(rng.exponential(50.0, k))[::-1] + 1.0
        eta = rng.normal(0.5, 0.2, k)
        phi = np.mod(np.pi + rng.normal(0, 0.2, k) + np.pi, 2 * np.pi) - np.pi
        out[i, :k] = np.stack([pt, eta, phi, pt * np.cosh(eta)], -1)
    return out


def tiny_inputs(name: str, n: int, seed: int = 0, model_input_kind=None) -> dict:
    """Random inputs for the tiny configuration of ``name`` (dict matching the model's inputs)."""
    from . import info

    cfg = TINY[name]
    rng = np.random.default_rng(seed)
    kind = model_input_kind or info(name).input_kind
    if kind == "constituents":
        x = {"constituents": random_constituents(n, cfg["input_shape"][0], rng)}
    elif kind == "features":
        x = {}
    else:
        x = {"image": rng.random((n, *cfg["input_shape"]), dtype="float32")}
    x["global_features"] = rng.normal(size=(n, N_GLOBAL)).astype("float32")
    return x


def tiny_model(name: str, **overrides) -> keras.Model:
    from . import build

    cfg = TINY[name]
    options = {**cfg["options"], **overrides}
    return build(name, cfg["n_classes"], input_shape=cfg["input_shape"], n_global_features=N_GLOBAL, **options)


def forward(model: keras.Model, x: dict) -> np.ndarray:
    """Inference outputs as numpy: an eager call on TensorFlow (no tracing), ``predict`` (one jitted function)
    elsewhere (JAX compiles every op separately when called eagerly)."""
    if keras.backend.backend() == "tensorflow":
        return keras.ops.convert_to_numpy(model(x, training=False))
    n = len(next(iter(x.values())))
    return np.asarray(model.predict(x, batch_size=n, verbose=0))


def check_model(name: str, round_trip: bool = True, tmpdir: str | None = None, run_eagerly=None) -> dict:
    """Build the tiny ``name``, fit one step on random data, and optionally round-trip it through ``.keras``."""
    t0 = time.perf_counter()
    cfg = TINY[name]
    n = cfg.get("batch", 4)
    model = tiny_model(name, seed=1)
    x = tiny_inputs(name, n)
    y = keras.utils.to_categorical(np.arange(n) % cfg["n_classes"], cfg["n_classes"])
    if run_eagerly is None:
        # The ensemble's train-step graph (~700 layers) takes minutes to trace on TensorFlow; eager is seconds.
        run_eagerly = name == "ensemble" and keras.backend.backend() == "tensorflow"
    # jit_compile=False: on TensorFlow, XLA-compiling each tiny train step costs more than it saves.
    jit = False if keras.backend.backend() == "tensorflow" else "auto"
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=run_eagerly, jit_compile=jit)
    hist = model.fit(x, y, batch_size=n, epochs=1, verbose=0)
    loss = float(hist.history["loss"][-1])
    pred_np = forward(model, x)
    record = {
        "name": name,
        "backend": keras.backend.backend(),
        "params": int(model.count_params()),
        "loss": loss,
        "dtype": str(pred_np.dtype),
        "shape": list(pred_np.shape),
        "row_sum_err": float(np.abs(pred_np.sum(-1) - 1).max()),
        "round_trip_max_diff": None,
    }
    if round_trip:
        with tempfile.TemporaryDirectory(dir=tmpdir) as d:
            path = os.path.join(d, f"{name}.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        pred2 = forward(loaded, x)
        record["round_trip_max_diff"] = float(np.abs(pred2 - pred_np).max())
        record["round_trip_same_weights"] = all(
            np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
            for a, b in zip(model.weights, loaded.weights)
        )
        from . import model_class_names

        record["class_names_kept"] = model_class_names(loaded) == model_class_names(model)
    record["seconds"] = round(time.perf_counter() - t0, 2)
    return record


def check_tagger(tmpdir: str | None = None) -> dict:
    """A LeNet tagger (ImagePreparation: standardize + crop; eta/phi flips) trained one step on sparse pixels
    densified inside the model, as on an accelerator; then its dense-image predictions before and after a
    ``.keras`` round trip, and against the sparse path."""
    from jettf.images import ImagePreparation, ImageSpec

    from . import build

    rng = np.random.default_rng(2)
    spec = ImageSpec(npix=20, extent=1.0, channels=("pt", "energy"))
    prep = ImagePreparation(spec, standardize=True, pixel_mean=rng.random(spec.shape), crop=0.8,
                            pixel_std=rng.random(spec.shape) + 0.1)
    tagger = build("lenet", 2, preparation=prep, flips="both", seed=1, filters=(4, 8), dense_units=(8,))
    n, k = 6, 9
    index = rng.integers(0, spec.npix ** 2, size=(n, k)).astype("int32")
    values = rng.exponential(5.0, size=(n, k, spec.n_channels)).astype("float32")
    sparse_in = {"image_index": keras.Input((k,), dtype="int32", name="image_index"),
                 "image_values": keras.Input((k, spec.n_channels), name="image_values")}
    densify = ImagePreparation(spec, name="densify")
    trainer = keras.Model(sparse_in, tagger({"image": densify(dict(sparse_in))}))
    trainer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    sparse = {"image_index": index, "image_values": values}
    loss = float(trainer.fit(sparse, np.arange(n) % 2, batch_size=n, epochs=1, verbose=0).history["loss"][-1])
    dense = {"image": np.asarray(keras.ops.convert_to_numpy(densify(sparse)))}
    pred = forward(tagger, dense)
    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        path = os.path.join(d, "tagger.keras")
        tagger.save(path)
        loaded = keras.saving.load_model(path)
    return {"name": "tagger", "backend": keras.backend.backend(), "loss": loss, "shape": list(pred.shape),
            "round_trip_max_diff": float(np.abs(forward(loaded, dense) - pred).max()),
            "sparse_vs_dense_max_diff": float(np.abs(forward(trainer, sparse) - pred).max()),
            "inference_is_deterministic": bool(np.array_equal(forward(tagger, dense), pred))}


def run(names=None, no_round_trip=(), tmpdir=None) -> list[dict]:
    from . import available

    names = list(names or available())
    records = [check_model(n, round_trip=n not in no_round_trip, tmpdir=tmpdir) for n in names]
    return records + [check_tagger(tmpdir)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all registered)")
    parser.add_argument("--no-round-trip", default="", help="comma-separated names to skip the .keras round trip")
    parser.add_argument("--out", default=None, help="also write the JSON records to this file")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n] or None
    skip = tuple(n for n in args.no_round_trip.split(",") if n)
    records = run(names, no_round_trip=skip)
    text = json.dumps(records, indent=1)
    if args.out:
        from jettf.utils import write_json

        write_json(args.out, records)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
