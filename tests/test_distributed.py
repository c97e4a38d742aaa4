"""Past one process: dataset builds on Beam's DaskRunner, and data-parallel training over two CPU devices.

Builds: the records of a Dask build (a LocalCluster of 2 processes started by the command, or a
scheduler address) are byte-identical to the single-process build's, on small public-layout files
and on a generated Pythia sample; a worker's error reaches the caller; Beam's local runner is
chosen explicitly, so Prism (a download) is never tried.

Training: the real trainer (:func:`jettf.training.trainer.fit_validate`) runs one epoch at global
batch B on one device and data-parallel on two CPU devices (TensorFlow: two logical CPU devices
under ``MirroredStrategy``; JAX: ``--xla_force_host_platform_device_count=2`` under
``keras.distribution.DataParallel``), each backend in its own subprocess; the weights agree to float
tolerance and the run directories record the devices.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jettf.data as jd
from tfds_builders import testing as dummy

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("apache_beam", reason="apache-beam (the 'beam' extra) is not installed")


def _split_bytes(info, split: str) -> bytes:
    return b"".join(Path(p).read_bytes() for p, _, _ in info.file_instructions(split))


def _assert_same_records(a, b) -> None:
    assert a.splits == b.splits
    for split in a.splits:
        assert _split_bytes(a, split) == _split_bytes(b, split), split
    keep = ("pixel_mean", "pixel_std", "feature_mean", "feature_std", "statistics", "selection", "max_pixels")
    assert {k: a.metadata[k] for k in keep} == {k: b.metadata[k] for k in keep}
    assert a.fingerprint() == b.fingerprint()


@pytest.fixture(scope="module")
def scheduler():
    """A Dask LocalCluster of 2 single-threaded processes, shared by the tests that pass its address."""
    pytest.importorskip("distributed", reason="Beam's Dask extra (apache-beam[dask]) is not installed")
    import logging

    from dask.distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.WARNING)
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture
def small_shards(monkeypatch):
    """top_tagging_images/quick with 7 source rows per shard task: several tasks per split, in order."""
    import tfds_builders  # noqa: F401 - registers the builders
    from jettf.data.info import builder_class

    configs = builder_class("top_tagging_images").builder_configs
    monkeypatch.setitem(configs, "quick", dataclasses.replace(configs["quick"], shard_size=7))


def test_dask_build_from_the_command_line_equals_the_single_process_build(small_shards, tmp_path, capsys):
    """``python -m jettf.data build ... --beam-runner dask --beam-workers 2`` on public-layout files."""
    pytest.importorskip("distributed", reason="Beam's Dask extra (apache-beam[dask]) is not installed")
    from jettf.data.__main__ import _main

    manual = tmp_path / "manual"
    dummy.write_dummy_files("top_tagging_images", manual)
    plain = jd.build("top_tagging_images/quick", data_dir=str(tmp_path / "plain"), manual_dir=str(manual))
    assert _main(["build", "top_tagging_images/quick", "--data-dir", str(tmp_path / "dask"), "--manual-dir",
                  str(manual), "--beam-runner", "dask", "--beam-workers", "2"]) == 0
    out, err = capsys.readouterr()
    assert "ready: tfds.load('top_tagging_images/quick'" in out
    assert "shard stage on Beam DaskRunner on a LocalCluster of 2 processes" in err
    assert "peak RSS" in err
    assert sum(len(list(p.iterdir())) for p in (tmp_path / "dask").glob(".jettf-dask-shards-*")) == 0
    dask = jd.load_info("top_tagging_images/quick", str(tmp_path / "dask"))
    assert dask.source["kind"] == "public"
    _assert_same_records(plain, dask)
    # 20 + 8 + 8 jets in shards of 7 rows: several tasks per split, streamed back in key order.
    assert plain.splits == {"train": 20, "validation": 8, "test": 8}


def test_dask_build_on_a_scheduler_address_equals_the_single_process_build_generated(scheduler, tmp_path):
    """A generated Pythia sample (JetNet, 4 jets per class): generated and built here, and generated (Pythia shards)
    and built on the scheduler at an address; the same jets and the same records."""
    from apache_beam.options.pipeline_options import PipelineOptions

    plain = jd.build("jetnet_images/quick", data_dir=str(tmp_path / "plain"), n_jets=4)
    dask = jd.build("jetnet_images/quick", data_dir=str(tmp_path / "dask"), n_jets=4, beam_runner="dask",
                    beam_options=PipelineOptions([f"--dask_client_address={scheduler}"]))
    assert dask.source["kind"] == "generated" and dask.source["seed"] == plain.source["seed"] == 0
    assert dask.source["directory"] != plain.source["directory"]  # each build generated its own sample
    assert [f["sha256"] for f in dask.source["files"]] == [f["sha256"] for f in plain.source["files"]]
    _assert_same_records(plain, dask)


class _Fails:
    """A shard processor that fails on its second task (picklable by reference for the Dask workers)."""

    def __call__(self, task):
        if task == 1:
            raise ValueError("shard 1 is broken")
        yield task, {"value": task}


def test_a_worker_error_reaches_the_build(scheduler, tmp_path):
    from jettf.data.distributed import DaskShards

    with DaskShards(scheduler, scratch_root=tmp_path) as shards:
        stream = shards.examples(_Fails(), [0, 1, 2])
        before = []
        with pytest.raises(ValueError, match="shard 1 is broken"):
            before.extend(stream)
        # In order, nothing after the broken shard; task 0 only if Beam ran it in a bundle apart from task 1.
        assert before in ([], [(0, {"value": 0})])
    assert not list(tmp_path.iterdir())  # scratch files removed


def test_local_beam_never_tries_prism(manual_small, tmp_path, monkeypatch):
    """DirectRunner (a name or Beam's object) runs on Beam's FnApiRunner: Prism, which downloads, is never tried."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability import prism_runner
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    import apache_beam as beam
    from jettf.data import distributed

    def no_prism(*args, **kwargs):
        raise AssertionError("the Prism runner (a download) was tried")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", no_prism)
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    for runner in ("DirectRunner", "direct", beam.runners.DirectRunner()):
        resolved, same = distributed.resolve_runner(runner, options)
        assert isinstance(resolved, FnApiRunner) and same is options
    resolved, flink = distributed.resolve_runner("FlinkRunner", PipelineOptions(["--flink_master=host:8081"]))
    assert resolved is None and flink.get_all_options()["runner"] == "FlinkRunner"
    plain = jd.build("top_tagging_images/quick", data_dir=str(tmp_path / "plain"), manual_dir=str(manual_small))
    beamed = jd.build("top_tagging_images/quick", data_dir=str(tmp_path / "beam"), manual_dir=str(manual_small),
                      beam_runner="DirectRunner")
    _assert_same_records(plain, beamed)


@pytest.fixture(scope="module")
def manual_small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manual")
    dummy.write_dummy_files("top_tagging_images", folder)
    return folder


# ------------------------------------------------------------------ data-parallel training on two CPU devices
_TRAIN = r"""
import dataclasses, json, sys
data_dir, out, order, flips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
from jettf.cli import quiet_tensorflow
quiet_tensorflow()  # as python -m jettf.train starts (TensorFlow imported, its devices listed)
import keras
import numpy as np
from jettf.train import parse_args, resolve_run
from jettf.training.trainer import fit_validate
args = parse_args(["--task", "binary", "--dataset", "top_tagging_images/quick", "--data-dir", data_dir,
                   "--model", "lenet", "--model-option", "filters=[4,8]", "--model-option", "dense_units=[16]",
                   "--flips", flips, "--batch-size", "8", "--devices", "2"])
config, _ = resolve_run(args)
assert config.devices == 2
for devices in [int(d) for d in order.split(",")]:
    fit_validate(dataclasses.replace(config, devices=devices), f"{out}/d{devices}", epochs=1, log=print)
    folder = f"{out}/d{devices}/checkpoints/fit"
    model = keras.models.load_model(folder + "/" + json.load(open(folder + "/progress.json"))["checkpoint"])
    np.savez(f"{out}/weights_{devices}.npz", *[np.asarray(w) for w in model.get_weights()])
try:  # a run directory is resumed only on as many devices as it started with
    fit_validate(dataclasses.replace(config, devices=1), f"{out}/d2", epochs=1)
except ValueError as err:
    print("REFUSED:", err)
"""


@pytest.fixture(scope="module")
def train_data(tmp_path_factory, manual_small):
    data = tmp_path_factory.mktemp("train_data")
    jd.build("top_tagging_images/quick", data_dir=str(data), manual_dir=str(manual_small))
    return data


def test_every_iteration_of_a_seeded_training_dataset_gives_the_same_batches(train_data):
    """Keras takes a first batch from an iterator of its own under a tf.distribute strategy, so the training
    iteration is a dataset's second: a seeded dataset must not reshuffle between iterations."""
    info = jd.load_info("top_tagging_images/quick", str(train_data))
    ds = jd.make_dataset(info, "train", batch_size=8, inputs=("jet",), training=True, seed=3)
    first, second = ([y for _, y in ds.as_numpy_iterator()] for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, second)) and len(first) == 3
    other = [y for _, y in jd.make_dataset(info, "train", batch_size=8, inputs=("jet",), training=True,
                                           seed=4).as_numpy_iterator()]
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))  # still shuffled, by the seed


def _train_on_devices(backend: str, data_dir, out, order: str, flips: str, env=None) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, "-c", _TRAIN, str(data_dir), str(out), order, flips], capture_output=True,
                          text=True, timeout=600, env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _check_same_weights_and_records(out, distribution: str, stdout: str) -> None:
    one, two = np.load(out / "weights_1.npz"), np.load(out / "weights_2.npz")
    assert len(one.files) == len(two.files) == 10
    for key in one.files:  # one epoch at global batch 8 (8 + 8 + 4 jets): the same weights, to float tolerance
        np.testing.assert_allclose(two[key], one[key], rtol=0, atol=1e-6, err_msg=key)
    for devices, expected in ((1, None), (2, distribution)):
        saved = json.loads((out / f"d{devices}" / "config.json").read_text())
        accelerator = saved["resolved"]["accelerator"]
        assert saved["config"]["devices"] == devices
        assert accelerator["devices"] == devices and accelerator["distribution"] == expected
        assert len(accelerator["device_names"]) == devices and accelerator["n_gpus"] == 0
        assert all("CPU" in name.upper() for name in accelerator["device_names"])
        assert accelerator["mixed_precision"] is False
    assert "REFUSED:" in stdout and "2 device(s)" in stdout


@pytest.mark.slow
def test_tensorflow_mirrored_strategy_on_two_cpu_devices_gives_the_one_device_weights(train_data, tmp_path):
    """``--devices 2`` on a CPU-only machine: two logical CPU devices (configured by the trainer before TensorFlow's
    runtime starts) under MirroredStrategy. Without random layers (flips none, no batch norm, no dropout): on
    TensorFlow each replica draws its own flips, so those would differ from one device."""
    out = _train_on_devices("tensorflow", train_data, tmp_path, "2,1", "none")  # 2 first: before the runtime starts
    _check_same_weights_and_records(tmp_path, "MirroredStrategy", out)


@pytest.mark.slow
def test_jax_data_parallel_on_two_cpu_devices_gives_the_one_device_weights(train_data, tmp_path):
    """XLA_FLAGS=--xla_force_host_platform_device_count=2 and DataParallel: one program over the global batch, so even
    random flips are the same as on one device."""
    out = _train_on_devices("jax", train_data, tmp_path, "1,2", "both",
                            env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    _check_same_weights_and_records(tmp_path, "DataParallel", out)
