"""Tests of the model zoo (jettf.models): every model on TensorFlow (in-process) and JAX (one subprocess).

The JAX subprocess (``python -m jettf.models.smoke`` with KERAS_BACKEND=jax) is started when this module's
tests begin and runs alongside the TensorFlow tests; ``test_jax_backend_all_models`` collects it at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import jettf.models as zoo
from jettf.models import layers as zl
from jettf.models import smoke

REPO = Path(__file__).resolve().parents[1]
ALL_MODELS = ["calo_cnn", "deeptop", "dense", "effnet_s", "efn", "ensemble", "lenet", "pfn", "resnet15"]
JAX_TIMEOUT_S = 900

# 002 Table 2 (images only, 2 classes) and Keras' EfficientNet builder with the same settings (ANCHORS.md).
EFFNET_PAPER = {"S0": 158_000, "S1": 184_000, "S2": 215_000, "S3": 258_000, "S4": 305_000}
EFFNET_KERAS = {"S0": 158_369, "S1": 195_573, "S2": 215_047, "S3": 250_699, "S4": 306_095}
RESNET50_NOTOP, INCEPTION_V3_NOTOP = 23_587_712, 21_802_784  # keras.applications, include_top=False


# --------------------------------------------------------------------------------------------- JAX process
@pytest.fixture(scope="module", autouse=True)
def jax_smoke(request, tmp_path_factory):
    """Start the JAX-backend smoke run in the background if the JAX test is selected."""
    wanted = any(item.name == "test_jax_backend_all_models" for item in request.session.items)
    if not wanted:
        yield None
        return
    out = tmp_path_factory.mktemp("jax") / "smoke.json"
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="3",
        # Faster XLA:CPU compilation of the (tiny-input) train steps; irrelevant to the results.
        XLA_FLAGS=(env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip(),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    cmd = [sys.executable, "-m", "jettf.models.smoke", "--no-round-trip", "ensemble", "--out", str(out)]
    log = open(out.with_suffix(".log"), "w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    state = {"proc": proc, "out": out, "log": out.with_suffix(".log")}
    yield state
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


# ------------------------------------------------------------------------------------------------ registry
def test_registry_lists_every_architecture():
    assert zoo.available() == ALL_MODELS
    assert zoo.info("pfn").input_kind == "constituents"
    assert zoo.info("effnet_s").input_kind == "image"
    with pytest.raises(ValueError, match="unknown model 'nope'; available: calo_cnn, deeptop"):
        zoo.build("nope", 2)


def test_build_validates_classes():
    with pytest.raises(ValueError, match="binary tasks use two softmax outputs"):
        zoo.build("lenet", 1)
    with pytest.raises(ValueError, match="expected 2 names"):
        zoo.build("lenet", 2, class_names=["a"])
    with pytest.raises(ValueError, match="input_shape=\\(28, 28\\)"):
        zoo.build("lenet", 2, input_shape=(28, 28))


# ------------------------------------------------------------------------------ every model, TensorFlow
@pytest.mark.parametrize("name", ALL_MODELS)
def test_train_step_and_keras_round_trip_tensorflow(name, tmp_path):
    rec = smoke.check_model(name, round_trip=True, tmpdir=str(tmp_path))
    cfg = smoke.TINY[name]
    assert rec["backend"] == "tensorflow"
    assert np.isfinite(rec["loss"])
    assert rec["dtype"] == "float32"
    assert rec["shape"] == [cfg.get("batch", 4), cfg["n_classes"]]
    assert rec["row_sum_err"] < 1e-5
    assert rec["round_trip_same_weights"]
    assert rec["round_trip_max_diff"] == 0.0
    assert rec["class_names_kept"]


def test_output_layer_contract():
    model = smoke.tiny_model("lenet", class_names=["qcd", "top"])
    assert model.get_layer(zoo.OUTPUT_NAME).dtype_policy.compute_dtype == "float32"
    assert model.get_layer(zoo.LOGITS_NAME).units == 2
    assert set(model.input) == {"image", "global_features"}
    assert zoo.model_class_names(model) == ["qcd", "top"]
    meta = zoo.model_metadata(model)
    assert meta["architecture"] == "lenet" and meta["input_shape"] == [28, 28, 3]
    assert meta["n_global_features"] == smoke.N_GLOBAL


def test_class_names_survive_save_load(tmp_path):
    model = zoo.build("pfn", 2, input_shape=(8, 4), class_names=["gluon", "quark"], phi_sizes=(4,), f_sizes=(4,))
    path = tmp_path / "pfn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert zoo.model_class_names(loaded) == ["gluon", "quark"]
    assert zoo.model_metadata(loaded)["options"] == {"phi_sizes": [4], "f_sizes": [4]}


def test_mixed_precision_keeps_float32_output():
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        for name in ("lenet", "efn"):
            model = smoke.tiny_model(name)
            out = model(smoke.tiny_inputs(name, 2), training=False)
            assert keras.backend.standardize_dtype(out.dtype) == "float32"
            assert model.get_layer("logits").compute_dtype == "bfloat16"
            assert model.get_layer(zoo.GLOBAL_NORM_NAME).compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_same_seed_same_initial_weights():
    a = zoo.build("effnet_s", 2, preset="S0", seed=3)
    b = zoo.build("effnet_s", 2, preset="S0", seed=3)
    c = zoo.build("effnet_s", 2, preset="S0", seed=4)
    wa, wb, wc = (m.get_weights() for m in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    assert not all(np.array_equal(x, y) for x, y in zip(wa, wc))
    # layers of equal shape get independent initial weights
    kernels = [w for w in wa if w.ndim == 4 and w.std() > 0]
    for i, k in enumerate(kernels):
        assert not any(k.shape == k2.shape and np.array_equal(k, k2) for k2 in kernels[i + 1 :])


# --------------------------------------------------------------------------------------- global features
@pytest.mark.parametrize("name", [n for n in ALL_MODELS if n != "ensemble"])
def test_global_features_change_the_output(name):
    model = smoke.tiny_model(name, seed=0)
    x = smoke.tiny_inputs(name, 4)
    y1 = keras.ops.convert_to_numpy(model(x, training=False))
    x2 = dict(x, global_features=x["global_features"] + 3.0)
    y2 = keras.ops.convert_to_numpy(model(x2, training=False))
    assert np.abs(y1 - y2).max() > 1e-6


def test_global_feature_standardization_adapt_and_fixed(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal([5.0, -2.0], [3.0, 0.5], size=(500, 2)).astype("float32")
    model = smoke.tiny_model("lenet")
    zoo.adapt_normalization(model, global_features=values)
    norm = model.get_layer(zoo.GLOBAL_NORM_NAME)
    z = keras.ops.convert_to_numpy(norm(values))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-3)
    x = smoke.tiny_inputs("lenet", 3)
    before = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "m.keras")
    after = keras.ops.convert_to_numpy(keras.saving.load_model(tmp_path / "m.keras")(x))
    np.testing.assert_array_equal(before, after)

    fixed = smoke.tiny_model("lenet", global_mean=[5.0, -2.0], global_std=[3.0, 0.5])
    z = keras.ops.convert_to_numpy(fixed.get_layer(zoo.GLOBAL_NORM_NAME)(values))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.2)
    with pytest.raises(ValueError, match="fixed mean/std"):
        zoo.adapt_normalization(fixed, global_features=values)
    with pytest.raises(ValueError, match="expected \\(2,\\)"):
        smoke.tiny_model("lenet", global_mean=[0.0], global_std=[1.0])
    const = smoke.tiny_model("lenet", global_mean=[1.0, 2.0], global_std=[0.0, 2.0])  # constant feature
    z = keras.ops.convert_to_numpy(const.get_layer(zoo.GLOBAL_NORM_NAME)(np.array([[1.0, 4.0]], "float32")))
    np.testing.assert_allclose(z, [[0.0, 1.0]], atol=1e-6)


# ------------------------------------------------------------------------------------------------ effnet_s
@pytest.mark.parametrize("preset", ["S0", "S1", "S2", "S3", "S4"])
def test_effnet_s_parameter_counts(preset):
    model = zoo.build("effnet_s", 2, preset=preset)
    n = model.count_params()
    assert n == EFFNET_KERAS[preset]
    assert abs(n - EFFNET_PAPER[preset]) / EFFNET_PAPER[preset] < 0.07
    res = zoo.effnet_s.PRESETS[preset][1]
    assert model.input["image"].shape[1:] == (res, res, 3)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)  # < 90 px: no dropout


def test_effnet_phi0_matches_keras_efficientnet_b0():
    """At phi = 0 the rebuild is EfficientNet-B0: same weight shapes as keras.applications.EfficientNetB0."""
    ours = zoo.build("effnet_s", 1000, phi=0)
    ref = keras.applications.EfficientNetB0(weights=None, classes=1000)
    assert ours.input["image"].shape[1:] == (224, 224, 3)
    assert ours.count_params() == ref.count_params() == 5_330_571
    assert sorted(tuple(w.shape) for w in ours.weights) == sorted(tuple(w.shape) for w in ref.weights)


def test_effnet_s_structure_and_global_feature_head():
    cfg = zoo.effnet_s.scaled_config(-12)  # S1, 40 px
    assert cfg["resolution"] == 40 and cfg["stem"] == 16
    assert [r for (_, _, r) in cfg["stages"]] == [1] * 7  # every stage has one block ("1A".."7A")
    model = zoo.build("effnet_s", 2, preset="S1")
    assert model.get_layer("stem_conv").output.shape[1:] == (20, 20, 16)  # 002 Table 1
    assert model.get_layer("block2a_project_bn").output.shape[1:] == (10, 10, 8)
    assert model.get_layer("block7a_project_bn").output.shape[1:3] == (2, 2)
    with_gf = zoo.build("effnet_s", 2, preset="S0", n_global_features=53)
    assert with_gf.get_layer("mlp").units == 200
    # 002: S0 with its 53 global features has 242K parameters.
    assert abs(with_gf.count_params() - 242_000) / 242_000 < 0.01


@pytest.mark.parametrize(
    ("shape", "fit", "layer"),
    [((28, 28, 3), "pad", "fit_pad"), ((40, 40, 3), "pad", "fit_crop"), ((28, 28, 3), "resize", "fit_resize")],
)
def test_effnet_s_fits_other_input_sizes(shape, fit, layer):
    model = zoo.build("effnet_s", 2, input_shape=shape, preset="S0", fit=fit)
    assert model.get_layer(layer).output.shape[1:3] == (36, 36)
    assert model.count_params() == EFFNET_KERAS["S0"]


def test_effnet_s_dropout_above_90_px():
    model = zoo.build("effnet_s", 2, phi=-6)  # 96 px
    assert model.get_layer("feature_dropout").rate == 0.2


# --------------------------------------------------------------------------------------------- lenet etc.
@pytest.mark.parametrize(("size", "expected"), [(28, 428_072), (32, 653_072), (40, 1_253_072)])
def test_lenet_parameter_counts_match_002(size, expected):
    model = zoo.build("lenet", 2, input_shape=(size, size, 3))
    assert model.count_params() == expected
    with_gf = zoo.build("lenet", 2, input_shape=(size, size, 3), n_global_features=53)
    assert with_gf.get_layer("fusion_concat").output.shape[-1] == model.get_layer("flatten").output.shape[-1] + 53


def test_resnet15_structure():
    model = zoo.build("resnet15", 2)
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D) and "shortcut" not in la.name]
    assert len(convs) == 15
    assert convs[0].kernel_size == (7, 7) and convs[0].strides == (2, 2) and convs[0].filters == 16
    assert [c.filters for c in convs[1:]] == [16] * 6 + [32] * 8
    assert not any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers)
    assert isinstance(model.get_layer("global_max_pool"), keras.layers.GlobalMaxPooling2D)
    assert model.output.shape[-1] == 2


def test_deeptop_structure():
    model = zoo.build("deeptop", 2)
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(8, (4, 4))] * 4
    names = [la.name for la in model.layers]
    assert names.index("pool2") == names.index("conv2") + 1
    assert [model.get_layer(f"dense_{i}").units for i in (1, 2, 3)] == [64, 64, 64]


def test_calo_cnn_configurable_and_validated():
    model = zoo.build("calo_cnn", 2, input_shape=(32, 32, 1), conv_blocks=4, filters=[8, 16, 32, 128],
                      dense_layers=3, units=200, dropout=0.5)  # fmt: skip
    assert [model.get_layer(f"block{b}_conv2").filters for b in range(1, 5)] == [8, 16, 32, 128]
    assert [model.get_layer(f"dense_{i}").units for i in (1, 2, 3)] == [200] * 3
    assert model.get_layer("dense_1_dropout").rate == 0.5
    with pytest.raises(ValueError, match="too small for 4 2x2 poolings"):
        zoo.build("calo_cnn", 2, input_shape=(8, 8, 1), conv_blocks=4)
    with pytest.raises(ValueError, match="2 filters for 3 blocks"):
        zoo.build("calo_cnn", 2, conv_blocks=3, filters=[8, 8])


# ---------------------------------------------------------------------------------------------- pfn / efn
def test_constituent_features_against_numpy():
    rng = np.random.default_rng(1)
    x = smoke.random_constituents(5, 10, rng, n_real=[10, 3, 7, 1, 5])
    z, ang = (keras.ops.convert_to_numpy(t) for t in zl.ConstituentFeatures("efn")(x))
    mask, feats = (keras.ops.convert_to_numpy(t) for t in zl.ConstituentFeatures("pfn", scaled=False)(x))
    pt, eta, phi = x[..., 0], x[..., 1], x[..., 2]
    for i in range(5):
        real = pt[i] > 0
        w = pt[i, real] / pt[i, real].sum()
        np.testing.assert_allclose(z[i, real], w, rtol=1e-5)
        # centroid via unit vectors (independent of the implementation's wrapping around the hardest particle)
        phi_c = np.arctan2((w * np.sin(phi[i, real])).sum(), (w * np.cos(phi[i, real])).sum())
        dphi = np.mod(phi[i, real] - phi_c + np.pi, 2 * np.pi) - np.pi
        np.testing.assert_allclose(ang[i, real, 0], eta[i, real] - (w * eta[i, real]).sum(), atol=1e-5)
        np.testing.assert_allclose(ang[i, real, 1], dphi, atol=2e-3)  # small-angle centroid vs circular mean
        assert np.abs(ang[i, real, 1]).max() < 1.5  # no 2 pi jumps across the seam
        assert np.all(ang[i, ~real] == 0) and np.all(z[i, ~real] == 0) and np.all(feats[i, ~real] == 0)
        np.testing.assert_allclose(feats[i, real, 0], np.log(pt[i, real]), rtol=1e-5)
        np.testing.assert_allclose(feats[i, real, 2], np.log(w), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(mask[i], real.astype("float32"))


def test_linear_pfn_standardizes_the_real_particles_only(tmp_path):
    """004's PFN inputs: (pT, delta eta, delta phi) standardized with the real particles' mean and std."""
    rng = np.random.default_rng(4)
    x = smoke.random_constituents(6, 12, rng, n_real=[12, 2, 7, 1, 5, 9])
    model = zoo.build("pfn", 2, input_shape=(None, 4), phi_sizes=(8,), f_sizes=(8,), center="origin",
                      particle_features="linear", seed=1)
    mask, feats = (keras.ops.convert_to_numpy(t) for t in zoo.find_layer(model, "pfn_inputs")(x))
    real = x[..., 0] > 0
    np.testing.assert_allclose(feats[real], x[real][:, :3], rtol=1e-6)
    assert np.all(feats[~real] == 0) and np.array_equal(mask, real.astype("float32"))
    # Adapted on the real particles (batches of an iterable, as the trainer passes them), not the padding.
    norm = zoo.find_layer(model, zoo.PARTICLE_NORM_NAME)
    for constituents in ((x[:3], x[3:]), x):
        zoo.adapt_normalization(model, constituents=constituents)
        np.testing.assert_allclose(np.ravel(norm.mean), x[real][:, :3].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(np.ravel(norm.variance), x[real][:, :3].var(axis=0), rtol=1e-4)
    # Padding does not move the output; the adapted statistics are saved with the model.
    padded = np.concatenate([x, np.zeros((6, 5, 4), "f4")], axis=1)
    out = keras.ops.convert_to_numpy(model({"constituents": x}))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model({"constituents": padded})), out, atol=1e-6)
    model.save(tmp_path / "pfn.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.saving.load_model(tmp_path / "pfn.keras")(
        {"constituents": x})), out, atol=1e-6)
    fixed = zoo.build("pfn", 2, input_shape=(None, 4), particle_features="linear", particle_mean=[1.0, 0.0, 0.0],
                      particle_std=[2.0, 1.0, 0.0])
    np.testing.assert_allclose(np.ravel(zoo.find_layer(fixed, zoo.PARTICLE_NORM_NAME).variance), [4.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="cannot be adapted"):
        zoo.adapt_normalization(fixed, constituents=x)
    with pytest.raises(ValueError, match=r"particle_mean/particle_std: shapes \(2,\)/\(2,\); expected \(3,\)"):
        zoo.build("pfn", 2, particle_features="linear", particle_mean=[0.0, 0.0], particle_std=[1.0, 1.0])
    with pytest.raises(ValueError, match="particle_features='linear' only"):
        zoo.build("pfn", 2, particle_mean=[0.0] * 3, particle_std=[1.0] * 3)
    with pytest.raises(ValueError, match="expected 'log' or 'linear'"):
        zoo.build("pfn", 2, particle_features="raw")


@pytest.mark.parametrize("name", ["pfn", "efn"])
def test_deep_sets_are_permutation_invariant(name):
    model = zoo.build(name, 2, input_shape=(10, 4), seed=0)
    x = smoke.random_constituents(3, 10, np.random.default_rng(2))
    perm = np.random.default_rng(3).permutation(10)
    a = keras.ops.convert_to_numpy(model({"constituents": x}))
    b = keras.ops.convert_to_numpy(model({"constituents": x[:, perm]}))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_efn_is_infrared_and_collinear_safe():
    model = zoo.build("efn", 2, input_shape=(12, 4), seed=0)
    x = smoke.random_constituents(2, 12, np.random.default_rng(4), n_real=[6, 6])
    base = keras.ops.convert_to_numpy(model({"constituents": x}))
    soft = x.copy()
    soft[:, 6] = [1e-6, 0.3, 0.1, 1e-6 * np.cosh(0.3)]  # add a very soft particle
    coll = x.copy()
    coll[:, 6] = coll[:, 0] * [0.5, 1, 1, 0.5]  # split the hardest particle collinearly
    coll[:, 0] *= [0.5, 1, 1, 0.5]
    for variant in (soft, coll):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model({"constituents": variant})), base, atol=1e-5)


# ------------------------------------------------------------------------------------------------ ensemble
def test_ensemble_full_size_parameters_and_branch_ablation():
    model = zoo.build("ensemble", 5)
    assert model.input["image"].shape[1:] == (299, 299, 3)
    assert model.get_layer("resnet50").count_params() == RESNET50_NOTOP
    assert model.get_layer("inception_v3").count_params() == INCEPTION_V3_NOTOP
    assert model.get_layer("resnet50_resize").output.shape[1:3] == (224, 224)
    fusion = model.get_layer("fusion")
    assert fusion.units == 512 and tuple(fusion.kernel.shape) == (2048 + 2048, 512)
    expected = RESNET50_NOTOP + INCEPTION_V3_NOTOP + (4096 * 512 + 512) + (512 * 5 + 5)
    assert model.count_params() == expected
    for branch, n_backbone in (("resnet50", RESNET50_NOTOP), ("inception_v3", INCEPTION_V3_NOTOP)):
        single = zoo.build("ensemble", 5, branches=branch)
        assert tuple(single.get_layer("fusion").kernel.shape) == (2048, 512)  # ablation keeps the 512 fusion
        assert single.count_params() == n_backbone + 2048 * 512 + 512 + 512 * 5 + 5


def test_ensemble_preprocessing_matches_keras_applications():
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    for mode, fn in (
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("tf", keras.applications.inception_v3.preprocess_input),
    ):
        ours = keras.ops.convert_to_numpy(zl.ImagenetPreprocess(mode, scale=255.0)(x))
        np.testing.assert_allclose(ours, fn(x.copy() * 255.0), rtol=1e-5, atol=1e-4)


def test_ensemble_imagenet_offline_error_says_how_to_supply_the_file(tmp_path):
    try:
        zoo.build("ensemble", 2, input_shape=(64, 64, 3), branches="resnet50", weights="imagenet",
                  weights_cache_dir=tmp_path)  # fmt: skip
    except RuntimeError as err:
        msg = str(err)
        assert "could not download" in msg
        assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
        assert "weights={'resnet50': '/path/to/" in msg
        assert str(tmp_path / "models") in msg
    else:  # pragma: no cover - only with internet access
        pytest.skip("ImageNet weights were downloadable here; the offline error cannot be exercised")


def test_ensemble_loads_local_weight_files_and_freezes(tmp_path):
    ref = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    path = tmp_path / "resnet50_random.weights.h5"
    ref.save_weights(path)
    model = zoo.build("ensemble", 2, input_shape=(40, 40, 1), branches="resnet50", resnet50_input_size=None,
                      weights={"resnet50": str(path)}, trainable_backbone_layers=0)  # fmt: skip
    backbone = model.get_layer("resnet50")
    assert all(np.array_equal(a, b) for a, b in zip(backbone.get_weights(), ref.get_weights()))
    assert not backbone.trainable
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"fusion", "logits"}
    partly = zoo.build("ensemble", 2, input_shape=(40, 40, 3), branches="resnet50", resnet50_input_size=None,
                       trainable_backbone_layers=5)  # fmt: skip
    flags = [la.trainable for la in partly.get_layer("resnet50").layers]
    assert flags[-5:] == [True] * 5 and not any(flags[:-5])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        zoo.build("ensemble", 2, input_shape=(40, 40, 3), branches="resnet50", weights=str(tmp_path / "no.h5"))
    with pytest.raises(ValueError, match="one file for two backbones"):
        zoo.build("ensemble", 2, input_shape=(80, 80, 3), weights=str(path))


# -------------------------------------------------------------------------------------------------- FLOPs
def test_count_flops_by_hand():
    inp = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="valid")(inp)  # 8*8*4 outputs x 27 MACs
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 8*8*4 x 9
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)  # 256 x 5
    model = keras.Model(inp, out)
    assert zoo.count_flops(model) == 2 * (8 * 8 * 4 * 27 + 8 * 8 * 4 * 9 + 256 * 5)
    pfn = zoo.build("pfn", 2, input_shape=(30, 4), phi_sizes=(8,), f_sizes=(4,))
    assert zoo.count_flops(pfn) == 2 * (30 * 7 * 8 + 8 * 4 + 4 * 2)
    with pytest.raises(ValueError, match="unknown \\(None\\)"):
        zoo.count_flops(zoo.build("pfn", 2))


# ------------------------------------------------------------------------------------------------- JAX
def test_jax_backend_all_models(jax_smoke):
    assert jax_smoke is not None, "the JAX smoke run was not started"
    proc = jax_smoke["proc"]
    try:
        proc.wait(timeout=JAX_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        pytest.fail(f"JAX smoke run exceeded {JAX_TIMEOUT_S} s")
    log = jax_smoke["log"].read_text()
    assert proc.returncode == 0, log[-4000:]
    records = {r["name"]: r for r in json.loads(jax_smoke["out"].read_text())}
    tagger = records.pop("tagger")
    assert sorted(records) == ALL_MODELS
    # The tagger (ImagePreparation + flips + LeNet) trains on sparse pixels and predicts on dense images on JAX.
    assert tagger["backend"] == "jax" and np.isfinite(tagger["loss"]) and tagger["shape"] == [6, 2], tagger
    assert tagger["round_trip_max_diff"] == 0.0 and tagger["inference_is_deterministic"], tagger
    assert tagger["sparse_vs_dense_max_diff"] < 1e-6, tagger
    for name, rec in records.items():
        assert rec["backend"] == "jax", rec
        assert np.isfinite(rec["loss"]), rec
        assert rec["dtype"] == "float32" and rec["row_sum_err"] < 1e-5, rec
        if name != "ensemble":  # the ensemble's .keras round trip is covered on TensorFlow
            assert rec["round_trip_max_diff"] == 0.0 and rec["round_trip_same_weights"], rec
