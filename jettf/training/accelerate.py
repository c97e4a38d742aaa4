"""Device set-up: mixed precision, XLA and multi-device data parallelism.

On GPUs the trainer uses bfloat16 mixed precision and XLA compilation; with
several devices it replicates the model, with ``tf.distribute.MirroredStrategy``
on the TensorFlow backend and ``keras.distribution.DataParallel`` on JAX, so
the same model code runs on either. On CPU (tests, laptops) everything stays
float32 and un-jitted, which is fastest there and bit-reproducible.

The number of devices (data-parallel replicas) is every visible GPU by default
(one device without a GPU), or ``devices=N`` (``--devices N``): the first N GPUs,
or, on a machine without GPUs, N CPU devices, which is how the multi-device
path runs in tests. The global batch (``--batch-size``) is split across the
replicas, so the gradient of a step is that of the whole batch either way.

CPU devices must exist before the backend's runtime starts:
:func:`setup_accelerator` splits TensorFlow's CPU into N logical devices
(``tf.config.set_logical_device_configuration``) and sets JAX's
``jax_num_cpu_devices`` (unless ``XLA_FLAGS`` already has
``--xla_force_host_platform_device_count``). ``python -m jettf.train`` calls it
before anything runs a TensorFlow op or a JAX computation; a program that already
did must set the devices itself first (JAX: ``XLA_FLAGS=--xla_force_host_platform_device_count=N``
in the environment; TensorFlow: ``tf.config.set_logical_device_configuration`` at start),
otherwise this raises and says so. In one process, go from fewer devices to more: on JAX,
arrays made under ``DataParallel`` keep their sharding, and training on one device
afterwards fails inside JAX.

On TensorFlow each replica runs the model on its part of the batch, so batch
normalization sees per-replica statistics and random layers (flips, dropout)
draw per replica; on JAX ``DataParallel`` compiles one program over the global
batch, so batch statistics and random draws are those of one device (random flips:
``tests/test_distributed.py``).
"""

from __future__ import annotations

import contextlib
import os
from typing import List, Optional

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
    """What the trainer needs to know about the devices: a scope and compile flags.

    Attributes:
        n_gpus: GPUs used (0 on CPU).
        devices: data-parallel replicas (1: no distribution).
        device_names: the devices the replicas run on.
    """

    def __init__(self, n_gpus: int, mixed_precision: bool, jit_compile, strategy=None, *, devices: int = 1,
                 device_names: Optional[List[str]] = None, distribution: Optional[str] = None):
        self.n_gpus = n_gpus
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self._strategy = strategy
        self.devices = devices
        self.device_names = list(device_names or [])
        self.distribution = distribution

    def scope(self):
        """Context in which models must be built (a distribution strategy's scope, or nothing)."""
        return self._strategy.scope() if self._strategy is not None else contextlib.nullcontext()

    def describe(self) -> dict:
        return {
            "backend": keras.backend.backend(),
            "n_gpus": self.n_gpus,
            "devices": self.devices,
            "device_names": self.device_names,
            "distribution": self.distribution,
            "mixed_precision": self.mixed_precision,
            "jit_compile": self.jit_compile,
        }


def _tf_cpu_devices(n: int) -> List[str]:
    """``n`` logical CPU devices of TensorFlow (configured now if its runtime has not started)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu) or []
    if len(configured) < n:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:
            raise RuntimeError(
                f"--devices {n}: TensorFlow's runtime started before its CPU could be split into {n} logical "
                "devices; call jettf.training.setup_accelerator(devices=...) (or "
                "tf.config.set_logical_device_configuration) before the first TensorFlow op") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")[:n]]


def _jax_request_cpu_devices(n: int) -> None:
    """Ask JAX for ``n`` CPU devices if its backend has not started and ``XLA_FLAGS`` does not fix the count."""
    import jax

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the backend has started: keep what it has (checked by the caller)
        pass


def setup_accelerator(mixed_precision: Optional[bool] = None, jit_compile: Optional[bool] = None,
                      devices: Optional[int] = None) -> Accelerator:
    """Choose precision, compilation and distribution for the visible devices.

    Args:
        mixed_precision: bfloat16 compute with float32 weights; default on with a GPU.
        jit_compile: XLA compilation of the train step; default on with a GPU.
        devices: data-parallel replicas: None = every visible GPU (one device without GPUs);
            N = the first N GPUs, or N CPU devices on a machine without GPUs.
    """
    if devices is not None and devices < 1:
        raise ValueError(f"--devices: expected a positive number of devices, got {devices}")
    backend = keras.backend.backend()
    if backend == "jax" and devices is not None and devices > 1:
        _jax_request_cpu_devices(devices)  # before the first JAX computation (also before counting GPUs)
    visible_gpus = _gpu_count()
    n = devices if devices is not None else max(visible_gpus, 1)
    on_gpu = visible_gpus > 0
    if on_gpu and n > visible_gpus:
        raise ValueError(f"--devices {n}: only {visible_gpus} GPU(s) visible")
    mixed_precision = on_gpu if mixed_precision is None else mixed_precision
    jit_compile = on_gpu if jit_compile is None else jit_compile
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed_precision else "float32")
    strategy, distribution, names = None, None, []
    if backend == "tensorflow":
        import tensorflow as tf

        if on_gpu:
            names = [d.name for d in tf.config.list_logical_devices("GPU")[:n]]
        else:  # one CPU device named without starting the runtime (a later call may still ask for more)
            names = _tf_cpu_devices(n) if n > 1 else ["/device:CPU:0"]
        if n > 1:
            strategy, distribution = tf.distribute.MirroredStrategy(devices=names), "MirroredStrategy"
    elif backend == "jax":
        import jax

        pool = [d for d in jax.devices() if d.platform == "gpu"] if on_gpu else jax.devices("cpu")
        if len(pool) < n:
            raise RuntimeError(
                f"--devices {n}: JAX has {len(pool)} CPU device(s) because its backend started before the trainer "
                f"could ask for more; start with XLA_FLAGS=--xla_force_host_platform_device_count={n}")
        names = [str(d) for d in pool[:n]]
        if n > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=pool[:n]))
            distribution = "DataParallel"
        else:
            keras.distribution.set_distribution(None)  # a previous multi-device run in this process
    elif n > 1:
        raise ValueError(f"--devices {n}: data parallelism needs the TensorFlow or JAX backend, not {backend}")
    return Accelerator(n if on_gpu else 0, mixed_precision, jit_compile, strategy, devices=n, device_names=names,
                       distribution=distribution)
