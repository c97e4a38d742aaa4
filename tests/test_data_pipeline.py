"""The tf.data pipeline (jettf.data) on datasets built from Pythia jets in the public layouts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import jettf.data as jd
from jettf.data.builder_base import stratified_order
from jettf.images import ImageSpec, densify, render
from jettf.jets import JetBatch

N_TOP = 16  # Pythia jets per class and split file for top_tagging_images/quick
N_JETNET = 10  # Pythia jets per class for jetnet_images/quick


def _interleave(batch: JetBatch) -> JetBatch:
    """Jets of the classes alternating (as in the public files), the order within a class kept."""
    return batch.select(np.lexsort((batch.labels, _rank_in_class(batch.labels))))


def _rank_in_class(labels):
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    return rank


@pytest.fixture(scope="module")
def top(tmp_path_factory, pythia_jets):
    """top_tagging_images/quick built from Pythia jets written as train.h5 / val.h5 / test.h5."""
    from jettf.io import read_top_tagging, write_top_tagging

    root = tmp_path_factory.mktemp("top")
    jets = pythia_jets("top_tagging", n_jets=2 * N_TOP, seed=1)
    rank = _rank_in_class(jets.labels)
    files = {"train": rank < N_TOP, "val": (rank >= N_TOP) & (rank < N_TOP + N_TOP // 2),
             "test": rank >= N_TOP + N_TOP // 2}
    sources = {}
    for name, keep in files.items():
        part = _interleave(jets.select(keep))
        path = write_top_tagging(part, root / "manual" / f"{name}.h5")
        sources[name] = read_top_tagging(path)  # the jets as the builder reads them
    info = jd.build("top_tagging_images/quick", data_dir=str(root / "data"), manual_dir=str(root / "manual"))
    return info, sources


@pytest.fixture(scope="module")
def jetnet(tmp_path_factory, pythia_jets):
    """jetnet_images/quick (32x32 pt) built from Pythia g/q/t/W/Z jets written as g.hdf5 ... z.hdf5."""
    from jettf.io import write_jetnet

    root = tmp_path_factory.mktemp("jetnet")
    write_jetnet(pythia_jets("jetnet", n_jets=N_JETNET, seed=1), root / "manual")
    return jd.build("jetnet_images/quick", data_dir=str(root / "data"), manual_dir=str(root / "manual"))


def _batches(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(y.numpy())
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)


def _source_in_record_order(top, split="train"):
    """The source jets of a split in the order the builder stores them (stratified)."""
    info, sources = top
    jets = sources[{"train": "train", "validation": "val", "test": "test"}[split]]
    jets = jets.select(jets.n_constituents >= info.metadata["min_constituents"])
    position = stratified_order(jets.labels)
    return jets.select(np.argsort(position))


# ------------------------------------------------------------------ shapes
def test_batches_have_the_documented_shapes_and_dtypes(top):
    info, _ = top
    ds = jd.make_dataset(info, "train", batch_size=8, inputs=("image", "global_features", "constituents", "jet"))
    x, y = next(iter(ds))
    assert set(x) == {"image_index", "image_values", "global_features", "constituents", "jet"}
    assert x["image_index"].shape == (8, info.max_pixels) and x["image_index"].dtype.name == "int32"
    assert x["image_values"].shape == (8, info.max_pixels, 3) and x["image_values"].dtype.name == "float32"
    assert x["global_features"].shape == (8, len(info.feature_names))
    assert x["constituents"].shape == (8, 200, 4) and x["jet"].shape == (8, 4)
    assert y.shape == (8,) and y.dtype.name == "int32"
    dense, _ = next(iter(jd.make_dataset(info, "train", batch_size=8, densify=True)))
    assert set(dense) == {"image"} and dense["image"].shape == (8, 40, 40, 3)
    _, onehot = next(iter(jd.make_dataset(info, "test", batch_size=4, label_format="onehot")))
    assert onehot.shape == (4, 2) and np.allclose(onehot.numpy().sum(axis=1), 1.0)
    assert jd.num_examples(info, "train") == sum(1 for _ in ds.unbatch())
    assert int(ds.cardinality()) == -(-jd.num_examples(info, "train") // 8)  # Keras knows where an epoch ends


def test_records_parse_with_tfds_own_feature_decoding(top):
    """The pipeline's batched parse gives what TFDS' builder.as_dataset decodes, record by record."""
    info, _ = top
    reference = list(info.builder.as_dataset("test", shuffle_files=False).as_numpy_iterator())
    x, y = _batches(jd.make_dataset(info, "test", batch_size=5, inputs=("image", "global_features",
                                                                        "constituents", "jet")))
    np.testing.assert_array_equal(y, [r["label"] for r in reference])
    for i, r in enumerate(reference):
        k = len(r["image_index"])
        np.testing.assert_array_equal(x["image_index"][i, :k], r["image_index"])
        np.testing.assert_array_equal(x["image_values"][i, :k], r["image_values"])
        assert not x["image_values"][i, k:].any()  # padding adds nothing
        m = len(r["constituents"])
        np.testing.assert_array_equal(x["constituents"][i, :m], r["constituents"])
        np.testing.assert_array_equal(x["global_features"][i], r["global_features"])


# ----------------------------------------------------------- image values
def test_sparse_records_densify_to_the_numpy_render(top):
    info, _ = top
    jets = _source_in_record_order(top)
    expected = densify(render(jets, info.image_spec, sparse=True), info.image_spec.npix)
    x, y = _batches(jd.make_dataset(info, "train", batch_size=7, training=False, densify=True))
    np.testing.assert_array_equal(y, jets.labels)
    np.testing.assert_allclose(x["image"], expected, rtol=0, atol=1e-6 * expected.max())


def test_stored_pixel_statistics_are_those_of_the_training_images(top):
    info, _ = top
    jets = _source_in_record_order(top)
    dense = densify(render(jets, info.image_spec, sparse=True), info.image_spec.npix).astype(np.float64)
    np.testing.assert_allclose(info.pixel_mean, dense.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.pixel_std, dense.std(axis=0), rtol=1e-4, atol=1e-5)


def test_densify_in_the_pipeline_needs_the_tensorflow_backend(top, monkeypatch):
    import keras

    info, _ = top
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="TensorFlow backend"):
        jd.make_dataset(info, "train", densify=True)
    assert jd.densify_on_host() is False  # under JAX the model densifies


# ---------------------------------------------------------- selection, K-fold
def test_class_subset_is_relabelled(jetnet):
    info = jetnet
    x, y = _batches(jd.make_dataset(info, "train", batch_size=4, classes=("g", "t"), training=False))
    labels = info.labels("train")
    wanted = labels[np.isin(labels, [0, 2])]
    np.testing.assert_array_equal(y, np.where(wanted == 0, 0, 1))
    assert jd.num_examples(info, "train", classes=("g", "t")) == len(y)


def _indices(split_string):
    out = []
    for a, b in re.findall(r"train\[(\d+):(\d+)\]", split_string):
        out.extend(range(int(a), int(b)))
    return out


def test_kfold_is_stratified_disjoint_and_seeded(jetnet):
    info = jetnet
    n = info.num_examples("train")
    labels = info.labels("train")
    folds = jd.kfold_splits(info, k=4, seed=0, blocks_per_fold=2)
    assert folds == jd.kfold_splits(info, k=4, seed=0, blocks_per_fold=2)
    assert folds != jd.kfold_splits(info, k=4, seed=1, blocks_per_fold=2)
    seen = []
    for fold in folds:
        val, train = _indices(fold.validation), _indices(fold.train)
        assert not set(val) & set(train) and sorted(val + train) == list(range(n))
        assert len(val) == fold.n_validation and len(train) == fold.n_train
        seen += val
        counts = np.bincount(labels[val], minlength=info.n_classes)
        expected = np.bincount(labels, minlength=info.n_classes) * len(val) / n
        assert np.all(np.abs(counts - expected) <= 2), (counts, expected)  # within blocks_per_fold jets
        # TFDS slicing reads exactly those records.
        _, y = _batches(jd.make_dataset(info, fold.validation, batch_size=8, training=False))
        np.testing.assert_array_equal(y, labels[val])
    assert sorted(seen) == list(range(n))


def test_records_are_in_stratified_order(jetnet):
    labels = jetnet.labels("train")
    fractions = np.bincount(labels) / len(labels)
    for start in range(0, len(labels) - 10, 3):
        window = labels[start:start + 10]
        assert np.all(np.abs(np.bincount(window, minlength=len(fractions)) - 10 * fractions) <= 1)
    # keys: class 0 at 1/4, 3/4; class 1 at 1/8, 3/8, 5/8, 7/8
    assert np.array_equal(stratified_order(np.array([0, 0, 1, 1, 1, 1])), [1, 4, 0, 2, 3, 5])


def test_same_seed_same_batches(top):
    info, _ = top
    options = dict(batch_size=8, training=True, densify=True)
    a = [y.numpy() for _, y in jd.make_dataset(info, "train", seed=11, **options)]
    b = [y.numpy() for _, y in jd.make_dataset(info, "train", seed=11, **options)]
    c = [y.numpy() for _, y in jd.make_dataset(info, "train", seed=12, **options)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    x1, _ = _batches(jd.make_dataset(info, "train", seed=11, **options))
    x2, _ = _batches(jd.make_dataset(info, "train", seed=12, **options))
    assert not np.array_equal(x1["image"], x2["image"]) and not all(np.array_equal(u, v) for u, v in zip(a, c))


# ------------------------------------------------------------------ rounds
def test_round_schedule_rounds_patience_and_resume(top):
    info, _ = top
    n = info.num_examples("train")
    schedule = jd.RoundSchedule.from_info(info, round_size=12, patience=2, sweeps=2)
    sizes = [r.n_examples for r in schedule.rounds]
    assert len(schedule) == 2 * schedule.n_rounds and sum(sizes) == 2 * n and max(sizes) <= 12
    first = schedule.current()
    assert first.split == f"train[0:{sizes[0]}]"
    _, y = _batches(schedule.dataset(info, batch_size=8, inputs=("image", "global_features")))
    assert len(y) == first.n_examples

    losses = [1.0, 0.9, 0.95, 0.97, 0.5, 0.6, 0.7, 0.4, 0.41, 0.42] * 3

    def run(sched, values):
        log = []
        for v in values:
            if sched.done:
                break
            log.append((sched.position, sched.end_epoch(v)))
        return log

    reference = jd.RoundSchedule.from_info(info, round_size=12, patience=2, sweeps=2)
    full = run(reference, losses)
    interrupted = jd.RoundSchedule.from_info(info, round_size=12, patience=2, sweeps=2)
    head = run(interrupted, losses[:5])
    state = json.loads(json.dumps(interrupted.state_dict()))  # what a checkpoint stores
    resumed = jd.RoundSchedule.from_info(info, round_size=12, patience=2, sweeps=2)
    resumed.load_state_dict(state)
    assert head + run(resumed, losses[5:]) == full
    assert resumed.done and reference.done
    with pytest.raises(ValueError, match="plan"):
        jd.RoundSchedule.from_info(info, round_size=5).load_state_dict(state)


def test_image_spec_round_trips_through_metadata(top):
    info, _ = top
    assert info.image_spec == ImageSpec.effnet_s(40)
    assert info.feature_names == info.feature_spec.names()
    assert info.metadata["image_spec_fingerprint"] == info.image_spec.fingerprint()
