"""Device set-up: mixed precision, XLA and multi-device data parallelism.

On GPUs the trainer uses bfloat16 mixed precision and XLA compilation; with
several GPUs it replicates the model, with ``tf.distribute.MirroredStrategy``
on the TensorFlow backend and ``keras.distribution.DataParallel`` on JAX, so
the same model code runs on either. On CPU (tests, laptops) everything stays
float32 and un-jitted, which is fastest there and bit-reproducible.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import keras

__all__ = ["Accelerator", "setup_accelerator"]


def _gpu_count() -> int:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return sum(1 for d in jax.devices() if d.platform == "gpu")
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    return 0


class Accelerator:
    """What the trainer needs to know about the devices: a scope and compile flags."""

    def __init__(self, n_gpus: int, mixed_precision: bool, jit_compile, strategy=None):
        self.n_gpus = n_gpus
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self._strategy = strategy

    def scope(self):
        """Context in which models must be built (a distribution strategy's scope, or nothing)."""
        return self._strategy.scope() if self._strategy is not None else contextlib.nullcontext()

    def describe(self) -> dict:
        return {
            "backend": keras.backend.backend(),
            "n_gpus": self.n_gpus,
            "mixed_precision": self.mixed_precision,
            "jit_compile": self.jit_compile,
        }


def setup_accelerator(mixed_precision: Optional[bool] = None, jit_compile: Optional[bool] = None) -> Accelerator:
    """Choose precision, compilation and distribution for the visible devices.

    Args:
        mixed_precision: bfloat16 compute with float32 weights; default on with a GPU.
        jit_compile: XLA compilation of the train step; default on with a GPU.
    """
    n_gpus = _gpu_count()
    mixed_precision = n_gpus > 0 if mixed_precision is None else mixed_precision
    jit_compile = n_gpus > 0 if jit_compile is None else jit_compile
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed_precision else "float32")
    strategy = None
    if n_gpus > 1:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
        elif keras.backend.backend() == "jax":
            keras.distribution.set_distribution(keras.distribution.DataParallel())
    return Accelerator(n_gpus, mixed_precision, jit_compile, strategy)
