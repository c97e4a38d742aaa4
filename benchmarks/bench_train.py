"""What a training epoch costs: model-only vs input pipeline vs end-to-end images/s.

    python benchmarks/bench_train.py                       # lenet on jetnet_images/quick (CPU, minutes)
    python benchmarks/bench_train.py --model ensemble --resize 75 --batch-size 16 --steps 5
    KERAS_BACKEND=jax python benchmarks/bench_train.py --model-only --model ensemble --input-side 299

Three figures, measured in one process on the same model and batch size:

- model only: ``train_on_batch`` on a batch already in memory (what the accelerator can take);
- pipeline only: batches from the TFRecords through ``jettf.data.make_dataset`` (flips, standardization);
- end to end: ``model.fit`` on that pipeline, as ``python -m jettf.train`` runs it.

and the time a full 000 multiclass epoch would take (5 classes x 170k jets, 80% train,
4/5 of it per fold: 544k images) at each rate. The pipeline must not be the
bottleneck: its rate should exceed the model's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

FULL_EPOCH_IMAGES = int(5 * 170_000 * 0.8 * 4 / 5)


def _rate(fn, n_images_per_call: int, seconds: float, min_calls: int) -> float:
    fn()  # warm-up (tracing, compilation)
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * n_images_per_call / (time.perf_counter() - start)


def _fit_rate(model, dataset, steps: int, batch_size: int, seconds: float) -> float:
    """Images/s of ``model.fit`` over ``dataset``, with enough steps to last about ``seconds``."""
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)  # warm-up
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    per_step = (time.perf_counter() - start) / steps
    steps = max(steps, int(seconds / per_step))
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="jetnet_images/quick")
    p.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "jettf-bench-train"))
    p.add_argument("--n-jets", type=int, default=300, help="jets per class of the generated dataset")
    p.add_argument("--model", default="lenet")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--resize", type=int, help="image side the model gets (default: the dataset's)")
    p.add_argument("--input-side", type=int, default=299, help="with --model-only: image side")
    p.add_argument("--model-only", action="store_true", help="skip the data (e.g. on a machine without TensorFlow)")
    p.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    p.add_argument("--steps", type=int, default=3, help="at least this many calls per measurement")
    args = p.parse_args(argv)

    import keras

    import jettf.models as zoo

    rows = []
    rng = np.random.default_rng(0)
    if args.model_only:
        shape = (args.input_side, args.input_side, 3)
        n_classes = 5
        model = zoo.build(args.model, n_classes, input_shape=shape, seed=0)
        x = {"image": rng.normal(size=(args.batch_size, *shape)).astype("float32")}
    else:
        import dataclasses

        import jettf.data as jd
        from jettf.training.config import resolve
        from jettf.training.trainer import build_tagger, prepare_data, training_model

        info = jd.build(args.dataset, data_dir=args.data_dir, n_jets=args.n_jets)
        config = resolve("multiclass", dataset=args.dataset, model=args.model, batch_size=args.batch_size,
                         resize=args.resize, standardize=True)
        data = prepare_data(config, info)
        model = training_model(build_tagger(config, info, data.class_names), data)
        shape, n_classes = zoo.find_layer(model, "image_preparation").output_image_shape, info.n_classes
        pipeline = data.dataset("train", training=True, repeat=True, drop_remainder=True)
        x = next(iter(pipeline))[0]  # one batch as the model takes it (dense or sparse: see densify_on_host)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    y = rng.integers(0, n_classes, args.batch_size)
    if args.model_only:
        model_rate = _rate(lambda: model.train_on_batch(x, y), args.batch_size, args.seconds, args.steps)
        rows.append(("model only (train_on_batch, batch in memory)", model_rate))
    else:
        import tensorflow as tf

        in_memory = tf.data.Dataset.from_tensors((x, y)).repeat()
        steps = max(args.steps, 10)
        model_rate = _fit_rate(model, in_memory, steps, args.batch_size, args.seconds)
        rows.append(("model only (fit on one batch held in memory)", model_rate))
        batches = iter(pipeline)
        rows.append(("pipeline only (TFRecords -> batches)",
                     _rate(lambda: next(batches), args.batch_size, args.seconds, args.steps)))
        rows.append(("end to end (fit on the pipeline)",
                     _fit_rate(model, pipeline, steps, args.batch_size, args.seconds)))

    backend = keras.backend.backend()
    print(f"\nmodel {args.model}, input {shape}, batch {args.batch_size}, backend {backend}, "
          f"{zoo.count_params(model if args.model_only else zoo.architecture(model)):,} parameters")
    print(f"| measurement | images/s | ratio to model only | full multiclass epoch ({FULL_EPOCH_IMAGES:,} images) |")
    print("|---|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / model_rate:.2f} | {FULL_EPOCH_IMAGES / rate / 60:,.1f} min |")


if __name__ == "__main__":
    main()
