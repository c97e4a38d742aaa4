"""The image preparation layer (jettf.images.ImagePreparation) and the tagger that carries it (jettf.models.build).

Every preparation step is checked against numpy on the same numbers: densify (sparse == dense input),
standardization with its floor, 002's crop, 000's colormap, resize; then the flips (training only, per jet,
per axis) and the round trip through ``.keras``. The JAX backend runs the same tagger in
``tests/test_models.py`` (``jettf.models.smoke.check_tagger``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import jettf.models as zoo
from jettf.images import ImagePreparation, ImageSpec, densify
from jettf.images.preparation import colormap_table
from jettf.images.render_numpy import SparseImages

SPEC = ImageSpec(npix=10, extent=1.0, channels=("pt", "energy"))


def _stats(rng):
    mean = rng.random(SPEC.shape).astype("float32")
    std = (rng.random(SPEC.shape) + 0.05).astype("float32")
    std[0, 0, 0] = 0.0  # a pixel never filled in training
    std[9, 9, 1] = 1e-4  # a pixel almost never filled
    return mean, std


def _sparse(rng, n=5, k=7):
    index = rng.integers(0, SPEC.npix ** 2, size=(n, k)).astype("int32")
    values = rng.exponential(3.0, size=(n, k, SPEC.n_channels)).astype("float32")
    index[:, -2:], values[:, -2:] = 0, 0.0  # padding
    return index, values


def _numpy_dense(index, values):
    """Sum repeated pixels (the numpy reference of densify)."""
    out = np.zeros((len(index), SPEC.npix ** 2, SPEC.n_channels), np.float32)
    for i in range(len(index)):
        np.add.at(out[i], index[i], values[i])
    return out.reshape(len(index), *SPEC.shape)


def test_densify_adds_repeated_pixels_and_padding_adds_nothing():
    rng = np.random.default_rng(0)
    index, values = _sparse(rng)
    index[0, 1] = index[0, 0]  # the same pixel twice
    out = np.asarray(ImagePreparation(SPEC)({"image_index": index, "image_values": values}))
    np.testing.assert_allclose(out, _numpy_dense(index, values), rtol=1e-6)
    # Unique, counted pixels (the records' layout) give the renderer's densify.
    sparse = SparseImages(np.array([[3, 17, 0]]), np.array([[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]]), np.array([2]),
                          np.array([0]))
    np.testing.assert_array_equal(np.asarray(ImagePreparation(SPEC)({"image_index": sparse.index.astype("int32"),
                                                                     "image_values": sparse.values})),
                                  densify(sparse, SPEC.npix))


def test_standardization_matches_numpy_with_the_floor():
    rng = np.random.default_rng(1)
    mean, std = _stats(rng)
    index, values = _sparse(rng)
    dense = _numpy_dense(index, values)
    layer = ImagePreparation(SPEC, standardize=True, pixel_mean=mean, pixel_std=std, std_floor=0.05)
    scale = np.maximum(std, 0.05 * std.max(axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(np.asarray(layer(dense)), (dense - mean) / scale, rtol=1e-5, atol=1e-6)
    # The sparse input takes the same path.
    np.testing.assert_allclose(np.asarray(layer({"image_index": index, "image_values": values})),
                               np.asarray(layer(dense)), rtol=1e-6, atol=1e-6)
    # Without a floor, one soft particle in an almost-never-filled pixel would be a huge input; with it, the
    # value stays within (x - mean) / (floor * largest std) and empty pixels stay near zero.
    one = np.zeros((1, *SPEC.shape), np.float32)
    one[0, 9, 9, 1] = 0.5
    raw = (0.5 - mean[9, 9, 1]) / std[9, 9, 1]
    floored = np.asarray(layer(one))[0, 9, 9, 1]
    assert raw > 1000 and abs(floored) < 0.5 / (0.05 * std[..., 1].max()) + 1
    empty = np.asarray(layer(np.zeros_like(one)))[0]
    assert np.abs(empty).max() <= np.abs(mean / scale).max() + 1e-6
    with pytest.raises(ValueError, match="expected the ImageSpec's"):
        layer.set_statistics(mean[:5], std[:5])


def test_crop_follows_002_and_keras_center_crop():
    spec = ImageSpec.effnet_s(35)
    x = np.random.default_rng(2).random((2, *spec.shape)).astype("float32")
    layer = ImagePreparation(spec, crop=0.8)
    assert layer.output_image_shape == (28, 28, 3) and ImagePreparation(ImageSpec.effnet_s(40), crop=0.8).crop == 32
    np.testing.assert_array_equal(np.asarray(layer(x)), x[:, 3:31, 3:31])  # 35 -> 28 drops 3 then 4
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(keras.layers.CenterCrop(28, 28)(x)))
    assert layer.window == pytest.approx(1.2 * 28 / 35)
    with pytest.raises(ValueError, match=r"side in \[1, 35\]"):
        ImagePreparation(spec, crop=36)


def test_colormap_and_resize():
    spec = ImageSpec(npix=12, extent=0.4)
    x = np.random.default_rng(3).random((3, *spec.shape)).astype("float32")
    layer = ImagePreparation(spec, colormap="viridis")
    out = np.asarray(layer(x))
    img = x[0, ..., 0]
    scaled = (img - img.min()) / (img.max() - img.min())
    np.testing.assert_allclose(out[0], colormap_table("viridis")[np.round(scaled * 255).astype(int)], atol=1e-6)
    assert ImagePreparation(spec, colormap="viridis", resize=75)(x).shape == (3, 75, 75, 3)
    with pytest.raises(ValueError, match="2 channels"):
        ImagePreparation(SPEC, colormap="viridis")


def test_tagger_flips_only_in_training_each_axis_independently():
    spec = ImageSpec(npix=6, extent=1.0)
    tagger = zoo.build("lenet", 2, preparation=ImagePreparation(spec), flips="both", seed=0, filters=(2,),
                       kernel_size=3, dense_units=(4,))
    flip_eta, flip_phi = tagger.get_layer("flip_eta"), tagger.get_layer("flip_phi")
    x = np.random.default_rng(4).random((64, *spec.shape)).astype("float32")
    np.testing.assert_array_equal(np.asarray(flip_phi(flip_eta(x, training=False), training=False)), x)
    out = np.asarray(flip_phi(flip_eta(x, training=True), training=True))
    kinds = []
    for a, b in zip(x, out):
        matches = [i for i, v in enumerate((a, a[::-1], a[:, ::-1], a[::-1, ::-1])) if np.array_equal(v, b)]
        assert matches, "a training image is not a flip of its input"
        kinds.append(matches[0])
    assert set(kinds) == {0, 1, 2, 3}  # none, eta, phi, both: independent per jet and axis (002)
    # Inference never flips: two calls agree, and equal the same model without flips.
    plain = zoo.build("lenet", 2, preparation=ImagePreparation(spec), seed=0, filters=(2,), kernel_size=3,
                      dense_units=(4,))
    plain.set_weights(tagger.get_weights())
    np.testing.assert_array_equal(np.asarray(tagger({"image": x}, training=False)),
                                  np.asarray(plain({"image": x}, training=False)))
    with pytest.raises(ValueError, match="flips="):
        zoo.build("lenet", 2, preparation=ImagePreparation(spec), flips="diagonal")


def test_tagger_carries_its_preparation_through_keras_saving(tmp_path):
    rng = np.random.default_rng(5)
    mean, std = _stats(rng)
    prep = ImagePreparation(SPEC, standardize=True, pixel_mean=mean, pixel_std=std, crop=8)
    tagger = zoo.build("lenet", 3, preparation=prep, flips="eta", n_global_features=2, feature_names=["a", "b"],
                       class_names=["g", "q", "t"], seed=0, filters=(2,), kernel_size=3, dense_units=(4,))
    assert tagger.input["image"].shape[1:] == SPEC.shape  # takes the rendered image
    assert zoo.architecture(tagger).input["image"].shape[1:] == (8, 8, 2)
    assert zoo.count_params(tagger) == zoo.architecture(tagger).count_params()  # statistics not counted
    x = {"image": _numpy_dense(*_sparse(rng)), "global_features": rng.normal(size=(5, 2)).astype("float32")}
    tagger.save(tmp_path / "t.keras")
    loaded = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(tagger(x)))
    layer = zoo.find_layer(loaded, "image_preparation")
    np.testing.assert_allclose(np.asarray(layer.pixel_mean), mean)
    assert layer.image_spec == SPEC and layer.crop == 8
    assert zoo.model_class_names(loaded) == ["g", "q", "t"] and zoo.model_metadata(loaded)["feature_names"] == ["a", "b"]
    with pytest.raises(ValueError, match="differs from the prepared image"):
        zoo.build("lenet", 2, input_shape=(10, 10, 2), preparation=prep)
    with pytest.raises(ValueError, match="takes constituents"):
        zoo.build("pfn", 2, preparation=prep)


def test_channel_selection_before_standardization():
    """``channels`` keeps some channels by name, in the given order (003 Table 4's subsets), from sparse or dense
    images; standardization uses those channels' statistics; the tagger still takes every rendered channel."""
    rng = np.random.default_rng(4)
    spec = ImageSpec(npix=10, extent=1.0, channels=("tracks", "ecal", "hcal"))
    mean = rng.random(spec.shape).astype("float32")
    std = (rng.random(spec.shape) + 0.5).astype("float32")
    index = rng.integers(0, 100, size=(4, 6)).astype("int32")
    values = rng.exponential(2.0, size=(4, 6, 3)).astype("float32")
    full = np.asarray(ImagePreparation(spec, standardize=True, pixel_mean=mean, pixel_std=std)(
        {"image_index": index, "image_values": values}))
    for channels, pick in (("hcal,tracks", [2, 0]), (["ecal"], [1]), (("tracks", "ecal", "hcal"), [0, 1, 2])):
        prep = ImagePreparation(spec, standardize=True, pixel_mean=mean, pixel_std=std, channels=channels, crop=8)
        assert prep.output_image_shape == (8, 8, len(pick))
        sparse = np.asarray(prep({"image_index": index, "image_values": values}))
        np.testing.assert_allclose(sparse, full[:, 1:9, 1:9, pick], rtol=1e-6)
        dense = np.asarray(prep(np.asarray(ImagePreparation(spec)({"image_index": index, "image_values": values}))))
        np.testing.assert_allclose(dense, sparse, rtol=1e-6)
    prep = ImagePreparation(spec, channels="tracks,ecal")
    assert ImagePreparation.from_config(prep.get_config()).channels == ("tracks", "ecal")
    assert prep.describe()["channels"] == ["tracks", "ecal"]
    tagger = zoo.build("resnet15", 2, preparation=prep)
    assert tuple(tagger.input["image"].shape[1:]) == (10, 10, 3)
    assert np.asarray(tagger(np.ones((2, 10, 10, 3), np.float32))).shape == (2, 2)
    for bad in ("tracks,em", "tracks,tracks", ""):
        with pytest.raises(ValueError, match="channels: expected distinct names from the images' channels"):
            ImagePreparation(spec, channels=bad)
    with pytest.raises(ValueError, match="colormap turns one channel into RGB; the images have 2 channels"):
        ImagePreparation(spec, channels="tracks,ecal", colormap="viridis")
    assert ImagePreparation(spec, channels="ecal", colormap="viridis").output_image_shape == (10, 10, 3)
