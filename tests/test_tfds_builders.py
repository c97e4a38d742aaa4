"""The TFDS builders: generated vs public sources, determinism, Beam, reuse rules, fresh-process loading.

Each builder's own TFDS-style test on dummy files is in ``tfds_builders/<name>/``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers
import numpy as np
import pytest

import jettf.data as jd
from tfds_builders import testing as dummy

ROOT = Path(__file__).resolve().parents[1]


def _records(info, split):
    """Serialized records of a split, in order, and the shard files' bytes."""
    import tensorflow as tf

    files = [p for p, _, _ in info.file_instructions(split)]
    return [r.numpy() for r in tf.data.TFRecordDataset(files)], b"".join(Path(f).read_bytes() for f in files)


def _python(code: str, timeout: int = 300) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manual")
    dummy.write_dummy_files("top_tagging_images", folder)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory, manual):
    data = tmp_path_factory.mktemp("data")
    return jd.build("top_tagging_images/quick", data_dir=str(data), manual_dir=str(manual))


def test_public_files_are_recorded_with_checksums(built, manual):
    from jettf.io import generated_settings
    from jettf.utils import sha256_file

    source = built.source
    assert source["kind"] == "public"
    assert all(generated_settings(p) is None for p in Path(manual).glob("*.h5"))  # no generator mark
    assert {f["name"]: f["sha256"] for f in source["files"]} == {
        p.name: sha256_file(p) for p in sorted(Path(manual).glob("*.h5"))}
    sizes = dummy.DUMMY_SIZES["top_tagging_images"]
    assert built.splits == {"train": 2 * sizes["train"], "validation": 2 * sizes["val"], "test": 2 * sizes["test"]}
    counts = built.metadata["selection"]["split_counts"]
    assert counts["train"] == {"qcd": sizes["train"], "top": sizes["train"]}
    assert built.metadata["pixel_mean"]["shape"] == [40, 40, 3]
    assert built.metadata["max_pixels"] <= built.layout.max_constituents


def test_two_builds_give_identical_records(built, manual, tmp_path):
    again = jd.build("top_tagging_images/quick", data_dir=str(tmp_path), manual_dir=str(manual))
    for split in built.splits:
        assert _records(built, split)[1] == _records(again, split)[1], split
    keep = ("pixel_mean", "pixel_std", "feature_mean", "feature_std", "statistics", "selection", "image_spec",
            "feature_spec", "feature_names", "max_pixels")
    assert {k: built.metadata[k] for k in keep} == {k: again.metadata[k] for k in keep}


def test_beam_direct_runner_gives_the_same_records(built, manual, tmp_path):
    beam = pytest.importorskip("apache_beam", reason="apache-beam (the 'beam' extra) is not installed")
    beamed = jd.build("top_tagging_images/quick", data_dir=str(tmp_path), manual_dir=str(manual),
                      beam_runner=beam.runners.DirectRunner())
    for split in built.splits:
        assert _records(built, split)[0] == _records(beamed, split)[0], split
    assert beamed.metadata["pixel_mean"] == built.metadata["pixel_mean"]


def test_reuse_only_when_the_build_matches(built, manual, tmp_path):
    data_dir = str(built.builder.data_dir_root)
    again = jd.build("top_tagging_images/quick", data_dir=data_dir, manual_dir=str(manual))  # reused
    assert again.builder.data_dir == built.builder.data_dir
    with pytest.raises(FileNotFoundError, match="train.h5"):
        jd.build("top_tagging_images/quick", data_dir=str(tmp_path), manual_dir=str(tmp_path / "empty"))


def test_min_constituents_drop_is_counted_and_n_jets_caps(manual, tmp_path):
    from jettf.io import write_top_tagging

    folder = tmp_path / "manual"
    folder.mkdir()
    for name in ("train", "val", "test"):
        jets = dummy.synthetic_jets(12, ("qcd", "top"), seed=7, min_constituents=2, max_constituents=6)
        write_top_tagging(jets, folder / f"{name}.h5")
    n_small = int((jets.n_constituents < 4).sum())
    assert n_small > 0
    info = jd.build("top_tagging_images/quick", data_dir=str(tmp_path / "data"), manual_dir=str(folder), n_jets=3)
    assert info.name == "top_tagging_images/quick-n3"
    dropped = info.metadata["selection"]["dropped_min_constituents"]
    assert sum(dropped.values()) == 3 * n_small
    for split, counts in info.metadata["selection"]["split_counts"].items():
        assert all(0 < c <= 3 for c in counts.values()), (split, counts)
    x, _ = next(iter(jd.make_dataset(info, "train", batch_size=64, inputs=("constituents",), training=False)))
    assert np.all((x["constituents"].numpy()[..., 0] > 0).sum(axis=1) >= 4)  # the kept jets


def test_generated_sample_path_and_fresh_process_load(tmp_path):
    """No manual dir: the builder generates Pythia jets, says so, and TFDS loads the result elsewhere."""
    info = jd.build("jetnet_images/quick", data_dir=str(tmp_path), n_jets=4)
    assert info.name == "jetnet_images/quick-n4"
    source = info.source
    assert source["kind"] == "generated" and source["n_jets_per_class"] == 4 and source["seed"] == 0
    assert sorted(f["name"] for f in source["files"]) == ["g.hdf5", "q.hdf5", "t.hdf5", "w.hdf5", "z.hdf5"]
    assert source["generation"]["card_fingerprint"] == source["card_fingerprint"]
    counts = info.metadata["selection"]["split_counts"]
    assert counts == {"train": {c: 3 for c in "gqtwz"}, "test": {c: 1 for c in "gqtwz"}}
    # A second build reuses the generated sample and the dataset.
    assert jd.build("jetnet_images/quick", data_dir=str(tmp_path), n_jets=4).fingerprint() == info.fingerprint()
    # Asking for the public files over a generated build is refused.
    with pytest.raises(ValueError, match="generated"):
        jd.build("jetnet_images/quick", data_dir=str(tmp_path), n_jets=4, manual_dir=str(tmp_path))
    out = _python(
        "import json, tensorflow_datasets as tfds, tfds_builders\n"
        f"ds = tfds.load('jetnet_images/quick-n4', data_dir={str(tmp_path)!r}, split='train')\n"
        f"b = tfds.builder('jetnet_images/quick-n4', data_dir={str(tmp_path)!r})\n"
        "ex = next(iter(tfds.as_numpy(ds)))\n"
        "print(json.dumps({'n': sum(1 for _ in ds), 'keys': sorted(ex), 'source': b.info.metadata['source']['kind'],"
        " 'classes': b.info.features['label'].names}))\n")
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"n": 15, "keys": ["constituents", "global_features", "image_index", "image_values", "jet",
                                        "label", "n_outside"],
                      "source": "generated", "classes": ["g", "q", "t", "w", "z"]}


def test_command_line_build_and_info(manual, tmp_path):
    data = str(tmp_path / "data")
    out = _python("from jettf.data.__main__ import main\n"
                  f"main(['build', 'top_tagging_images/quick', '--data-dir', {data!r}, '--manual-dir', {str(manual)!r}])\n"
                  f"main(['info', 'top_tagging_images/quick', '--data-dir', {data!r}])\n"
                  "import tensorflow_datasets as tfds, tfds_builders\n"
                  f"print('loaded', len(tfds.load('top_tagging_images/quick', data_dir={data!r}, split='test')))\n")
    assert "source: public files" in out and "ready: tfds.load('top_tagging_images/quick'" in out
    assert f"loaded {2 * dummy.DUMMY_SIZES['top_tagging_images']['test']}" in out


# ------------------------------------------------ provenance and content fingerprints
@pytest.fixture(scope="module")
def generated_builds(tmp_path_factory):
    """The same small generated dataset (Pythia, 20 jets per class, 33x33 images) built twice, in two data dirs."""
    return [jd.build("quark_gluon_images/quick", data_dir=str(tmp_path_factory.mktemp(f"gen{i}")), n_jets=20)
            for i in range(2)]


def test_fingerprint_identifies_content_not_paths_or_times(generated_builds, tmp_path):
    import shutil

    import tensorflow as tf

    first, second = generated_builds
    assert first.builder.data_dir != second.builder.data_dir
    assert first.source["directory"] != second.source["directory"]
    # The generated source files are byte-identical (no HDF5/zip timestamps) ...
    assert [f["sha256"] for f in first.source["files"]] == [f["sha256"] for f in second.source["files"]]
    # ... and so are the records, so the fingerprints agree.
    for split in first.splits:
        assert _records(first, split)[1] == _records(second, split)[1], split
    assert first.fingerprint() == second.fingerprint()

    # One changed record (a copy of the second build with one label flipped) changes the fingerprint.
    root = tmp_path / "copy"
    shutil.copytree(second.builder.data_dir_root, root)
    changed = jd.build("quark_gluon_images/quick", data_dir=str(root), n_jets=20)  # reuses the copied files
    assert changed.fingerprint() == first.fingerprint()
    path = Path(changed.file_instructions("test")[0][0])
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    example = tf.train.Example.FromString(serialized[0])
    label = example.features.feature["label"].int64_list.value
    label[0] = 1 - label[0]
    serialized[0] = example.SerializeToString(deterministic=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in serialized:
            writer.write(record)
    assert jd.build("quark_gluon_images/quick", data_dir=str(root), n_jets=20).fingerprint() != first.fingerprint()


def test_generated_files_given_as_manual_dir_are_reported_as_generated(generated_builds, tmp_path, capsys):
    import shutil

    from jettf.io import generated_settings

    folder = Path(generated_builds[0].source["directory"])  # what jettf.generate wrote: QG_jets.npz, generation.json
    mark = generated_settings(folder / "QG_jets.npz")
    assert mark["sample"] == "quark_gluon" and mark["seed"] == 0 and mark["n_jets_per_class"] == 20
    assert "Pythia" in mark["generator"] and "seconds" not in json.dumps(mark)  # settings, never timings

    info = jd.build("quark_gluon_images/quick", data_dir=str(tmp_path / "data"), manual_dir=str(folder), n_jets=20)
    source = info.source
    assert source["kind"] == "generated" and source["manual_dir"] is True and source["directory"] == str(folder)
    assert (source["seed"], source["n_jets_per_class"], source["sample"]) == (0, 20, "quark_gluon")
    assert source["settings"] == mark and source["generation"]["card_fingerprint"] == mark["card_fingerprint"]
    assert len(source["recognised_by"]) == 2 and source["files"][0]["generated_mark"] is True
    assert "GENERATED with Pythia 8 + FastJet" in capsys.readouterr().err
    summary = info.summary()
    assert f"source: generated with Pythia 8 + FastJet: 20 jets per class, seed 0 (from --manual-dir {folder})" \
        in summary and "public" not in summary
    assert info.fingerprint() == generated_builds[0].fingerprint()  # the same records, whichever way they came

    # A file copied alone (no generation.json beside it) is still recognised, by the mark inside it.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(folder / "QG_jets.npz", alone)
    source = jd.build("quark_gluon_images/quick", data_dir=str(tmp_path / "data2"), manual_dir=str(alone),
                      n_jets=20).source
    assert source["kind"] == "generated" and source["recognised_by"] == ["the 'jettf_generated' mark inside the files"]
    assert source["generation"] is None and source["settings"] == mark


# ------------------------------------------------ example workers never outlive the build
_SLOW_BUILD = """
import sys, time
from jettf.data.builder_base import _run_tasks
from jettf.utils import sigterm_as_keyboard_interrupt
sigterm_as_keyboard_interrupt()
try:
    for _ in _run_tasks(time.sleep, [120.0] * 4, workers=2):  # each 'shard task' sleeps in a spawned worker
        pass
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_example_workers_die_with_the_build(tmp_path, sig):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "out", "w") as out:  # files, not pipes: surviving workers would hold a pipe open
        proc = subprocess.Popen([sys.executable, "-c", _SLOW_BUILD], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=str(ROOT))
    children, deadline = {}, time.monotonic() + 120
    try:
        while sum(b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes() for c in helpers.children(proc.pid)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "out").read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(1.0)  # the workers are in their task
        children = helpers.children(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    end = time.monotonic() + 10
    survivors = children
    while survivors and time.monotonic() < end:
        time.sleep(0.1)
        survivors = {pid: children[pid] for pid in helpers.survivors(children)}
    for pid in survivors:  # clean up after a failure
        os.kill(pid, signal.SIGKILL)
    assert len(children) >= 2 and survivors == {}
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "interrupted" in (tmp_path / "out").read_text()
