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
def test_host_batches_have_the_documented_shapes_and_dtypes(top):
    info, _ = top
    ds = jd.make_dataset(info, "train", batch_size=8, inputs=("image", "global_features", "constituents", "jet"),
                         standardize=True, crop=True, flips="both", densify="host")
    x, y = next(iter(ds))
    assert x["image"].shape == (8, 32, 32, 3) and x["image"].dtype.name == "float32"
    assert x["global_features"].shape == (8, len(info.feature_names))
    assert x["constituents"].shape == (8, 200, 4) and x["jet"].shape == (8, 4)
    assert y.shape == (8,) and y.dtype.name == "int32"
    _, onehot = next(iter(jd.make_dataset(info, "test", batch_size=4, label_format="onehot", densify="host")))
    assert onehot.shape == (4, 2) and np.allclose(onehot.numpy().sum(axis=1), 1.0)
    assert jd.num_examples(info, "train") == sum(1 for _ in ds.unbatch())


def test_crop_sizes_follow_002(top):
    info, _ = top
    assert jd.image_prep(info, standardize=True, crop=True).output_shape == (32, 32, 3)  # 40 -> 32
    import tfds_builders

    configs = tfds_builders.TopTaggingImages.builder_configs
    assert configs["effnet_s_35"].image_spec.crop == 28 and configs["effnet_s_40"].image_spec.crop == 32
    assert jd.image_prep(info, crop=20, resize=36).output_shape == (36, 36, 3)


# ----------------------------------------------------------- image values
def test_sparse_records_densify_to_the_numpy_render(top):
    info, _ = top
    jets = _source_in_record_order(top)
    expected = densify(render(jets, info.image_spec, sparse=True), info.image_spec.npix)
    x, y = _batches(jd.make_dataset(info, "train", batch_size=7, training=False, densify="host"))
    np.testing.assert_array_equal(y, jets.labels)
    np.testing.assert_allclose(x["image"], expected, rtol=0, atol=1e-6 * expected.max())


def test_standardization_uses_the_stored_training_mean_and_std(top):
    info, _ = top
    jets = _source_in_record_order(top)
    dense = densify(render(jets, info.image_spec, sparse=True), info.image_spec.npix).astype(np.float64)
    np.testing.assert_allclose(info.pixel_mean, dense.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.pixel_std, dense.std(axis=0), rtol=1e-4, atol=1e-5)
    x, _ = _batches(jd.make_dataset(info, "train", batch_size=16, training=False, standardize=True, crop=True,
                                    densify="host"))
    std = np.where(info.pixel_std > 0, info.pixel_std, 1.0)
    expected = ((dense - info.pixel_mean) / std)[:, 4:36, 4:36, :]
    np.testing.assert_allclose(x["image"], expected, rtol=1e-4, atol=1e-4)
    # Standardized training images have mean 0 and std 1 wherever a pixel was ever filled.
    full, _ = _batches(jd.make_dataset(info, "train", batch_size=16, training=False, standardize=True,
                                       densify="host"))
    filled = info.pixel_std > 0
    np.testing.assert_allclose(full["image"].mean(axis=0)[filled], 0.0, atol=1e-4)
    np.testing.assert_allclose(full["image"].std(axis=0)[filled], 1.0, atol=1e-3)


def test_global_feature_standardization(top):
    info, _ = top
    raw, _ = _batches(jd.make_dataset(info, "train", batch_size=16, inputs=("global_features",), training=False))
    std, _ = _batches(jd.make_dataset(info, "train", batch_size=16, inputs=("global_features",), training=False,
                                      standardize_features=True))
    spread = raw["global_features"].std(axis=0) > 0
    np.testing.assert_allclose(std["global_features"].mean(axis=0)[spread], 0.0, atol=1e-4)
    np.testing.assert_allclose(std["global_features"].std(axis=0)[spread], 1.0, atol=1e-3)


def test_flips_happen_only_on_training_data(top):
    info, _ = top
    options = dict(batch_size=8, standardize=True, crop=True, densify="host", shuffle=False)
    plain, _ = _batches(jd.make_dataset(info, "train", training=False, flips="both", **options))
    flipped, _ = _batches(jd.make_dataset(info, "train", training=True, flips="both", seed=3, **options))
    again, _ = _batches(jd.make_dataset(info, "train", training=True, flips="both", seed=3, **options))
    np.testing.assert_array_equal(flipped["image"], again["image"])  # seeded
    kinds = []
    for a, b in zip(plain["image"], flipped["image"]):
        variants = [a, a[::-1], a[:, ::-1], a[::-1, ::-1]]
        matches = [i for i, v in enumerate(variants) if np.array_equal(v, b)]
        assert matches, "a training image is not a flip of the original"
        kinds.append(matches[0])
    assert len(set(kinds)) > 1  # some flipped, some not
    eta_only, _ = _batches(jd.make_dataset(info, "train", training=True, flips="eta", seed=3, **options))
    for a, b in zip(plain["image"], eta_only["image"]):
        assert np.array_equal(a, b) or np.array_equal(a[::-1], b)
    # Evaluation data never flips, whatever is asked.
    for split in ("validation", "test"):
        ref, _ = _batches(jd.make_dataset(info, split, flips=None, **options))
        got, _ = _batches(jd.make_dataset(info, split, flips="both", **options))
        np.testing.assert_array_equal(ref["image"], got["image"])


def test_device_densify_matches_the_host_pipeline(top):
    import keras

    info, _ = top
    options = dict(batch_size=8, standardize=True, crop=True, flips="both", training=True, seed=5, shuffle=False)
    host, _ = _batches(jd.make_dataset(info, "train", densify="host", **options))
    prep = jd.image_prep(info, standardize=True, crop=True, densify="device")
    device, _ = _batches(jd.make_dataset(info, "train", prep=prep, **options))
    assert set(device) == {"image_index", "image_values", "image_flips"}
    assert device["image_index"].shape[1] == prep.max_pixels
    layer = jd.SparseImagePrep.from_prep(prep)
    out = np.asarray(layer([device["image_index"], device["image_values"], device["image_flips"]]))
    np.testing.assert_allclose(out, host["image"], rtol=1e-5, atol=1e-5)
    # wrap_model puts the layer in front of a model that takes a dense image.
    inp = keras.Input(prep.output_shape, name="image")
    model = keras.Model({"image": inp}, keras.layers.GlobalAveragePooling2D()(inp))
    wrapped = jd.wrap_model(model, prep)
    assert {t.name.split(":")[0] for t in wrapped.inputs} >= {"image_index", "image_values", "image_flips"}
    np.testing.assert_allclose(np.asarray(wrapped(device)), host["image"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)


def test_to_rgb_replicates_or_maps_through_a_colormap(jetnet):
    info = jetnet
    base, _ = _batches(jd.make_dataset(info, "test", batch_size=5, densify="host"))
    rgb, _ = _batches(jd.make_dataset(info, "test", batch_size=5, to_rgb="replicate", densify="host"))
    assert base["image"].shape[-1] == 1 and rgb["image"].shape[-1] == 3
    for c in range(3):
        np.testing.assert_array_equal(rgb["image"][..., c], base["image"][..., 0])
    cmap, _ = _batches(jd.make_dataset(info, "test", batch_size=5, to_rgb="colormap", resize=64, densify="host"))
    assert cmap["image"].shape[1:] == (64, 64, 3)
    small, _ = _batches(jd.make_dataset(info, "test", batch_size=5, to_rgb="colormap", densify="host"))
    table = jd.pipeline.colormap_table("viridis")
    img, pix = base["image"][0, ..., 0], small["image"][0]
    scaled = (img - img.min()) / (img.max() - img.min())
    np.testing.assert_allclose(pix, table[np.round(scaled * 255).astype(int)], atol=1e-6)


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
    options = dict(batch_size=8, flips="both", standardize=True, crop=True, training=True, densify="host")
    a = [y.numpy() for _, y in jd.make_dataset(info, "train", seed=11, **options)]
    b = [y.numpy() for _, y in jd.make_dataset(info, "train", seed=11, **options)]
    c = [y.numpy() for _, y in jd.make_dataset(info, "train", seed=12, shuffle_buffer=64, **options)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    x1, _ = _batches(jd.make_dataset(info, "train", seed=11, **options))
    x2, _ = _batches(jd.make_dataset(info, "train", seed=12, shuffle_buffer=64, **options))
    assert not np.array_equal(x1["image"], x2["image"]) or not all(np.array_equal(u, v) for u, v in zip(a, c))


# ------------------------------------------------------------------ rounds
def test_round_schedule_rounds_patience_and_resume(top):
    info, _ = top
    n = info.num_examples("train")
    schedule = jd.RoundSchedule.from_info(info, round_size=12, patience=2, sweeps=2)
    sizes = [r.n_examples for r in schedule.rounds]
    assert len(schedule) == 2 * schedule.n_rounds and sum(sizes) == 2 * n and max(sizes) <= 12
    first = schedule.current()
    assert first.split == f"train[0:{sizes[0]}]"
    _, y = _batches(schedule.dataset(info, batch_size=8, standardize=True, crop=True, flips="both"))
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
