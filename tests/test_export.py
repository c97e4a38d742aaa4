"""TF-Serving export (``python -m jettf.export``) and the request helpers of :mod:`jettf.serving`.

One tiny real training run (LeNet with global features, so both the image and the feature paths are
exported) is exported once per module; references are computed independently: the numpy renderer, the
preparation in numpy, fastjet-contrib features and the Keras model's own ``predict``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
KINEMATICS = ("jet_pt", "jet_eta", "jet_phi", "jet_mass", "n_constituents")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished LeNet run with global features (binary top vs QCD, 30 jets per class, 1 epoch)."""
    from jettf import train

    base = tmp_path_factory.mktemp("export_run")
    out = base / "lenet-gf"
    assert train.main(["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
                       "--global-features", "--n-jets", "30", "--epochs", "1", "--n-boot", "10", "--batch-size", "32",
                       "--data-dir", str(base / "data"), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    from jettf.serving import export_run

    base = tmp_path_factory.mktemp("saved_models") / "tagger"
    return export_run(run_dir, out=base, log=lambda m: None)


@pytest.fixture(scope="module")
def served(exported):
    from jettf.serving import ServedModel

    return ServedModel(exported)


@pytest.fixture(scope="module")
def reference(run_dir, pythia_jets):
    """Raw jets, their prepared inputs (numpy renderer + numpy preparation + fastjet features) and Keras' output."""
    import keras

    import jettf.models  # noqa: F401 - custom layers
    from jettf.features import FeatureSpec, compute_features
    from jettf.images import ImageSpec, render

    config = json.loads((run_dir / "config.json").read_text())
    batch = pythia_jets("top_tagging", n_jets=4, seed=1)  # 8 jets, zero-padded to the widest
    spec = ImageSpec.from_dict(config["image_spec"])
    with np.load(run_dir / "preprocessing.npz") as npz:
        mean, std = npz["pixel_mean"], np.where(npz["pixel_std"] > 0, npz["pixel_std"], 1.0)
    crop = config["image_prep"]["crop"]
    top = (spec.npix - crop) // 2
    image = ((render(batch, spec) - mean) / std)[:, top:top + crop, top:top + crop].astype(np.float32)
    features, names = compute_features(batch, FeatureSpec.from_dict(config["feature_spec"]))
    assert names == config["feature_names"]
    model = keras.models.load_model(run_dir / "model.keras")
    probs = model.predict({"image": image, "global_features": features}, verbose=0)
    constituents = np.stack([batch.pt, batch.eta, batch.phi, batch.energy], axis=-1).astype(np.float32)
    jet = np.stack([batch.jet_pt, batch.jet_eta, batch.jet_phi, batch.jet_mass], axis=-1).astype(np.float32)
    substructure = features[:, [i for i, n in enumerate(names) if n not in KINEMATICS]]
    return {
        "batch": batch, "config": config, "probs": probs,
        "serving_default": {"image": image, "global_features": features},
        "from_constituents": {"constituents": constituents, "jet": jet, "substructure_features": substructure},
    }


def _run_python(code: str, env=None, timeout=300) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env or ENV, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def _assert_answers(outputs, probs):
    np.testing.assert_allclose(np.asarray(outputs["probabilities"], np.float32), probs, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(np.asarray(outputs["class_ids"]), probs.argmax(axis=1))


# ----------------------------------------------------------------------------- layout, metadata
def test_layout_metadata_and_model_card(exported, run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert exported.name == "1" and exported.parent.name == "tagger"
    assert all(p.name.isdigit() for p in exported.parent.iterdir())  # no temporary left behind
    for name in ("saved_model.pb", "variables/variables.index", "assets/jettf_model.json",
                 "assets/preprocessing.npz", "model_card.md"):
        assert (exported / name).exists(), name

    meta = json.loads((exported / "assets" / "jettf_model.json").read_text())
    assert meta["class_names"] == config["class_names"] == ["qcd", "top"]
    assert meta["image_spec"] == config["image_spec"] and meta["feature_spec"] == config["feature_spec"]
    assert meta["dataset_fingerprint"] == config["dataset_fingerprint"]
    assert meta["metrics"]["test"]["auc"] == json.loads((run_dir / "metrics.json").read_text())["test"]["auc"]
    substructure = [n for n in config["feature_names"] if n not in KINEMATICS]
    assert meta["features_as_input"] == substructure and list(meta["features_computed_in_graph"]) == list(KINEMATICS)
    sigs = meta["signatures"]
    assert sigs["serving_default"]["inputs"]["image"]["shape"] == [-1, 32, 32, 3]
    assert sigs["serving_default"]["inputs"]["global_features"]["columns"] == config["feature_names"]
    assert sigs["from_constituents"]["inputs"]["substructure_features"]["columns"] == substructure
    assert set(sigs["from_constituents"]["outputs"]) == {"probabilities", "class_ids"}
    with np.load(exported / "assets" / "preprocessing.npz") as npz, np.load(run_dir / "preprocessing.npz") as ref:
        np.testing.assert_array_equal(npz["pixel_mean"], ref["pixel_mean"])

    card = (exported / "model_card.md").read_text()
    for text in ("`qcd`", "`top`", "docker run", "tensorflow/serving", "from_constituents", "substructure_features",
                 "tau32_b1", config["dataset_fingerprint"], "saved_model_cli show"):
        assert text in card, text


def _signature_defs(text: str) -> dict:
    """saved_model_cli's listing as {signature: {"inputs"/"outputs": {name: (dtype, shape)}}}."""
    defs = {}
    for block in re.split(r"\n(?=signature_def\[)", text):
        head = re.match(r"signature_def\['([^']+)'\]", block)
        if not head:
            continue
        entry = defs.setdefault(head.group(1), {"inputs": {}, "outputs": {}})
        for kind, name, dtype, shape in re.findall(
                r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)", block):
            entry[kind][name] = (dtype, shape.strip())
    return defs


def test_saved_model_cli_lists_both_signatures(exported):
    cli = shutil.which("saved_model_cli")
    cmd = [cli] if cli else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run([*cmd, "show", "--dir", str(exported), "--all"], env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    defs = _signature_defs(result.stdout)
    out = {"probabilities": ("DT_FLOAT", "(-1, 2)"), "class_ids": ("DT_INT64", "(-1)")}
    assert defs["serving_default"] == {
        "inputs": {"image": ("DT_FLOAT", "(-1, 32, 32, 3)"), "global_features": ("DT_FLOAT", "(-1, 47)")},
        "outputs": out}
    assert defs["from_constituents"] == {
        "inputs": {"constituents": ("DT_FLOAT", "(-1, -1, 4)"), "jet": ("DT_FLOAT", "(-1, 4)"),
                   "substructure_features": ("DT_FLOAT", "(-1, 42)")},
        "outputs": out}
    assert "Method name is: tensorflow/serving/predict" in result.stdout


# ----------------------------------------------------------------------------- predictions
def test_fresh_process_predictions_equal_keras_and_numpy_renderer(exported, reference, tmp_path):
    np.savez(tmp_path / "in.npz", **{f"{sig}.{k}": v for sig in ("serving_default", "from_constituents")
                                     for k, v in reference[sig].items()})
    _run_python(f"""
        import numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(exported)!r})
        inputs = dict(np.load({str(tmp_path / "in.npz")!r}))
        out = {{}}
        for sig in ("serving_default", "from_constituents"):
            args = {{k.split(".", 1)[1]: tf.constant(v) for k, v in inputs.items() if k.startswith(sig + ".")}}
            for name, value in loaded.signatures[sig](**args).items():
                out[sig + "." + name] = value.numpy()
        np.savez({str(tmp_path / "out.npz")!r}, **out)
    """)
    out = dict(np.load(tmp_path / "out.npz"))
    for sig in ("serving_default", "from_constituents"):
        assert out[f"{sig}.probabilities"].dtype == np.float32 and out[f"{sig}.class_ids"].dtype == np.int64
        _assert_answers({k: out[f"{sig}.{k}"] for k in ("probabilities", "class_ids")}, reference["probs"])


def test_from_constituents_accepts_any_padding(served, reference):
    """Extra zero rows and another jet order change nothing; each jet is rendered from its own constituents."""
    raw = dict(reference["from_constituents"])
    padded = np.concatenate([raw["constituents"], np.zeros((len(raw["jet"]), 7, 4), np.float32)], axis=1)
    order = np.arange(len(raw["jet"]))[::-1]
    out = served.predict("from_constituents", constituents=padded[order], jet=raw["jet"][order],
                         substructure_features=raw["substructure_features"][order])
    _assert_answers(out, reference["probs"][order])


# ----------------------------------------------------------------------------- requests
@pytest.mark.parametrize("columnar", [False, True], ids=["instances", "inputs"])
@pytest.mark.parametrize("signature", ["serving_default", "from_constituents"])
def test_rest_requests_are_answered(served, reference, signature, columnar):
    from jettf.serving import make_rest_request

    body = make_rest_request(signature, reference[signature], columnar=columnar)
    assert set(body) == {"signature_name", "inputs" if columnar else "instances"}
    answer = served.rest(json.dumps(body))  # through JSON text, as over HTTP
    if columnar:
        _assert_answers(answer["outputs"], reference["probs"])
    else:
        assert len(answer["predictions"]) == len(reference["probs"])
        _assert_answers({k: [p[k] for p in answer["predictions"]] for k in ("probabilities", "class_ids")},
                        reference["probs"])


def test_rest_request_written_by_hand(served, reference):
    """The documented row format, one jet with its own (unpadded) constituents; ragged jets are padded by the helper."""
    from jettf.serving import make_rest_request

    raw, batch = reference["from_constituents"], reference["batch"]
    n = int(batch.n_constituents[0])
    body = {"signature_name": "from_constituents", "instances": [{
        "constituents": raw["constituents"][0, :n].tolist(), "jet": raw["jet"][0].tolist(),
        "substructure_features": raw["substructure_features"][0].tolist()}]}
    (prediction,) = served.rest(body)["predictions"]
    np.testing.assert_allclose(prediction["probabilities"], reference["probs"][0], atol=1e-5)
    assert prediction["class_ids"] == int(reference["probs"][0].argmax())

    ragged = [raw["constituents"][i, : int(batch.n_constituents[i])] for i in range(3)]
    body = make_rest_request("from_constituents", {"constituents": ragged, "jet": raw["jet"][:3],
                                                   "substructure_features": raw["substructure_features"][:3]})
    _assert_answers({k: [p[k] for p in served.rest(body)["predictions"]] for k in ("probabilities", "class_ids")},
                    reference["probs"][:3])


def test_grpc_predict_request_is_answered(served, reference, exported):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from jettf.serving import make_predict_request

    for signature in ("serving_default", "from_constituents"):
        request = make_predict_request("tagger", signature, reference[signature], version=1)
        wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        response = served.grpc(wire)
        assert response.model_spec.name == "tagger" and response.model_spec.signature_name == signature
        _assert_answers({k: tf.make_ndarray(v) for k, v in response.outputs.items()}, reference["probs"])
    request.output_filter.append("class_ids")
    assert list(served.grpc(request).outputs) == ["class_ids"]


def _bad_cases(reference):
    good = reference["serving_default"]
    raw = reference["from_constituents"]
    nan_image = good["image"].copy()
    nan_image[0, 3, 4, 1] = np.nan
    negative = raw["constituents"].copy()
    negative[1, 0, 0] = -5.0
    return {
        "wrong image size": ("predict", "serving_default", {**good, "image": good["image"][:, :31]},
                             "input 'image' must have shape \\[N, 32, 32, 3\\], got \\[8, 31, 32, 3\\]"),
        "wrong dtype (numpy)": ("predict", "serving_default", {**good, "image": good["image"].astype(np.float64)},
                                "input 'image' must have dtype float32, got float64"),
        "wrong dtype (gRPC)": ("grpc", "from_constituents", {**raw, "jet": raw["jet"].astype(np.float64)},
                               "input 'jet' must have dtype float32, got float64"),
        "strings in JSON": ("rest", "from_constituents", {**raw, "jet": np.array([["a"] * 4] * 8)},
                            "input 'jet' must hold numbers"),
        "NaN (numpy)": ("predict", "serving_default", {**good, "image": nan_image}, "'image' holds NaN or Inf"),
        "NaN (JSON)": ("rest", "serving_default", {**good, "image": nan_image}, "'image' holds NaN or Inf"),
        "missing input": ("rest", "from_constituents", {k: raw[k] for k in ("constituents", "jet")},
                          "missing \\['substructure_features'\\]"),
        "unknown input": ("predict", "serving_default", {**good, "pid": raw["jet"]}, "unknown \\['pid'\\]"),
        "batch sizes differ": ("predict", "from_constituents", {**raw, "jet": raw["jet"][:5]},
                               "inputs '\\w+' and '\\w+' have different batch sizes \\((8 and 5|5 and 8)\\)"),
        "4 columns expected": ("grpc", "from_constituents", {**raw, "constituents": raw["constituents"][..., :3]},
                               "'constituents' must have shape \\[N, \\*, 4\\]"),
        "negative pt (graph check)": ("predict", "from_constituents", {**raw, "constituents": negative},
                                      "from_constituents: input 'constituents' has pt < 0"),
        "unknown signature": ("rest", "predict_jets", good, "signature_name 'predict_jets' not found"),
    }


@pytest.mark.parametrize("case", ["wrong image size", "wrong dtype (numpy)", "wrong dtype (gRPC)", "strings in JSON",
                                  "NaN (numpy)", "NaN (JSON)", "missing input", "unknown input", "batch sizes differ",
                                  "4 columns expected", "negative pt (graph check)", "unknown signature"])
def test_bad_requests_fail_clearly(served, reference, case):
    from jettf.serving import RequestError, make_predict_request

    how, signature, inputs, message = _bad_cases(reference)[case]
    with pytest.raises(RequestError, match=message):
        if how == "predict":
            served.predict(signature, inputs)
        elif how == "grpc":
            served.grpc(make_predict_request("tagger", signature, inputs))
        else:
            body = {"signature_name": signature, "instances": [{k: v[i].tolist() for k, v in inputs.items()}
                                                                for i in range(8)]}
            served.rest(json.dumps(body))  # json.dumps writes NaN, as lenient clients do


def test_malformed_rest_bodies(served, reference):
    from jettf.serving import RequestError

    one = {k: v[0].tolist() for k, v in reference["from_constituents"].items()}
    ragged = [dict(one), {**one, "constituents": one["constituents"][:5]}]
    cases = {
        "not json": ("{'instances': ", "not valid JSON"),
        "both forms": ({"instances": [1], "inputs": {}}, "exactly one of 'instances'"),
        "typo": ({"signature": "from_constituents", "instances": [one]}, "unknown request keys \\['signature'\\]"),
        "empty": ({"signature_name": "from_constituents", "instances": []}, "non-empty list"),
        "ragged": ({"signature_name": "from_constituents", "instances": ragged}, "not a rectangular array"),
        "bare values": ({"signature_name": "from_constituents", "instances": [[1.0]]}, "must be an object"),
    }
    for name, (body, message) in cases.items():
        with pytest.raises(RequestError, match=message):
            served.rest(body)


def test_graph_itself_refuses_bad_inputs(served, reference):
    """Without the helper (as inside TF-Serving), the signatures' own checks stop bad tensors."""
    import tensorflow as tf

    sig = served._loaded.signatures
    good = {k: tf.constant(v) for k, v in reference["serving_default"].items()}
    raw = {k: tf.constant(v) for k, v in reference["from_constituents"].items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input \\?'image\\?' must have shape \(N, 32, 32, 3\)"):
        sig["serving_default"](**{**good, "image": good["image"][:, :, :30]})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"global_features\\?' holds NaN or Inf"):
        sig["serving_default"](**{**good, "global_features": good["global_features"] * np.inf})
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have the same batch size"):
        sig["from_constituents"](**{**raw, "substructure_features": raw["substructure_features"][:3]})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"jet\\?' must have shape \(N, 4\)"):
        sig["from_constituents"](**{**raw, "jet": raw["jet"][:, :3]})


# ----------------------------------------------------------------------------- versions, CLI, variants
def test_versions_are_never_overwritten(run_dir, exported):
    from jettf.export import main
    from jettf.serving import export_run

    with pytest.raises(FileExistsError, match="never overwritten"):
        export_run(run_dir, out=exported.parent, version=1)
    with pytest.raises(ValueError, match="positive integer"):
        export_run(run_dir, out=exported.parent, version=0)
    assert main([str(run_dir), "--out", str(exported.parent), "--version", "1"]) == 2
    assert main([str(run_dir.parent / "nope"), "--out", str(exported.parent)]) == 2
    assert all(p.name.isdigit() for p in exported.parent.iterdir())
    assert json.loads((exported / "assets" / "jettf_model.json").read_text())["version"] == 1


def test_device_densified_run_is_served_with_dense_images(run_dir, exported, reference, tmp_path):
    """A run trained on sparse pixels (SparseImagePrep inside the model) exports the same dense interface."""
    import dataclasses

    import keras

    from jettf.data import wrap_model
    from jettf.data.pipeline import ImagePrep
    from jettf.export import main
    from jettf.serving import ServedModel

    run = tmp_path / "device"
    run.mkdir()
    for name in ("preprocessing.npz", "metrics.json"):
        shutil.copy(run_dir / name, run / name)
    config = json.loads((run_dir / "config.json").read_text())
    config["image_prep"]["densify"] = "device"
    (run / "config.json").write_text(json.dumps(config))
    with np.load(run_dir / "preprocessing.npz") as npz:
        fields = {f.name for f in dataclasses.fields(ImagePrep)} - {"densify"}
        prep = ImagePrep(**{k: v for k, v in config["image_prep"].items() if k in fields}, densify="device",
                         mean=npz["pixel_mean"], std=np.where(npz["pixel_std"] > 0, npz["pixel_std"], 1.0))
    wrapped = wrap_model(keras.models.load_model(run_dir / "model.keras"), prep)
    assert "image_index" in [t.name for t in wrapped.inputs]
    wrapped.save(run / "model.keras")

    assert main([str(run), "--out", str(exported.parent)]) == 0  # next free version
    version = exported.parent / "2"
    served = ServedModel(version)
    assert served.specs["serving_default"]["image"]["shape"] == [-1, 32, 32, 3]
    assert served.metadata["model"]["trained_densify"] == "device"
    for signature in ("serving_default", "from_constituents"):
        _assert_answers(served.predict(signature, reference[signature]), reference["probs"])


def test_jax_trained_model_exports_through_tensorflow(run_dir, reference, tmp_path):
    """Fine-tune the run's model under KERAS_BACKEND=jax, save it, export it under TensorFlow: same answers."""
    from jettf.serving import ServedModel

    run = tmp_path / "jax-run"
    run.mkdir()
    for name in ("preprocessing.npz", "metrics.json"):
        shutil.copy(run_dir / name, run / name)
    config = json.loads((run_dir / "config.json").read_text())
    config["accelerator"]["backend"] = "jax"
    (run / "config.json").write_text(json.dumps(config))
    np.savez(tmp_path / "in.npz", **reference["serving_default"])
    stdout = _run_python(f"""
        import keras, numpy as np
        import jettf.models
        from jettf.serving import export_run
        assert keras.backend.backend() == "jax"
        model = keras.models.load_model({str(run_dir / "model.keras")!r})
        x = dict(np.load({str(tmp_path / "in.npz")!r}))
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        model.fit(x, np.arange(8) % 2, epochs=2, batch_size=4, verbose=0)
        model.save({str(run / "model.keras")!r})
        np.save({str(tmp_path / "jax_probs.npy")!r}, np.asarray(model.predict(x, verbose=0)))
        try:
            export_run({str(run)!r}, out={str(tmp_path / "never")!r})
        except RuntimeError as err:
            print("REFUSED:", err)
    """, env={**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    assert "REFUSED:" in stdout and "needs Keras' TensorFlow backend" in stdout and "'jax'" in stdout
    assert not (tmp_path / "never").exists()

    jax_probs = np.load(tmp_path / "jax_probs.npy")
    assert np.abs(jax_probs - reference["probs"]).max() > 1e-4  # really retrained under JAX
    # The CLI, started with KERAS_BACKEND=jax still set, switches to TensorFlow itself.
    cli = subprocess.run([sys.executable, "-m", "jettf.export", str(run), "--out", str(tmp_path / "sm" / "jax")],
                         env={**ENV, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert cli.stdout.strip() == str(tmp_path / "sm" / "jax" / "1") and "KERAS_BACKEND=jax ignored" in cli.stderr
    served = ServedModel(tmp_path / "sm" / "jax" / "1")
    assert served.metadata["model"]["trained_with_backend"] == "jax"
    _assert_answers(served.predict("serving_default", reference["serving_default"]), jax_probs)


def _synthetic_run(path: Path, model, inputs, image_spec=None, image_prep=None) -> Path:
    """A minimal run directory (config.json + model.keras) around an untrained zoo model."""
    path.mkdir(parents=True)
    config = {"model": model.name, "task": "binary", "class_names": ["gluon", "quark"], "inputs": inputs,
              "image_spec": image_spec, "image_prep": image_prep, "feature_names": [], "feature_spec": None,
              "dataset": "synthetic", "dataset_fingerprint": "0" * 16, "accelerator": {"backend": "tensorflow"}}
    (path / "config.json").write_text(json.dumps(config))
    model.save(path / "model.keras")
    return path


def test_charged_channels_take_pdg_ids_and_subjet_rotation_runs_in_graph(pythia_jets, tmp_path):
    """Charged/neutral channels need `pid`; centring and rotating on kT subjets happen inside the graph."""
    import jettf.models as zoo
    from jettf.images import ImageSpec, render
    from jettf.jets import JetBatch
    from jettf.serving import ServedModel, export_run

    jets = pythia_jets("quark_gluon", n_jets=3)
    batch = JetBatch.from_ptetaphie(jets.pt, jets.eta, jets.phi, jets.energy, jets.mask, pid=jets.pid,
                                    jet_pt=jets.jet_pt, jet_eta=jets.jet_eta, jet_phi=jets.jet_phi,
                                    jet_mass=jets.jet_mass)  # no `charge`: the renderer derives it from pid
    spec = ImageSpec(npix=16, extent=0.4, channels=("charged_pt", "neutral_pt", "charged_multiplicity"),
                     center="leading_subjet", rotate="subjet", flip=True)
    prep = {"npix": 16, "n_channels": 3, "standardize": False, "crop": None, "to_rgb": None,
            "colormap": "viridis", "resize": None, "densify": "host", "max_pixels": 80}
    model = zoo.build("lenet", 2, input_shape=(16, 16, 3), filters=(4, 4), kernel_size=3, dense_units=(8,),
                      class_names=["gluon", "quark"], seed=1)
    run = _synthetic_run(tmp_path / "qg", model, ["image"], spec.to_dict(), prep)
    served = ServedModel(export_run(run, out=tmp_path / "sm" / "qg", log=lambda m: None))
    assert list(served.specs["from_constituents"]) == ["constituents", "jet", "pid"]
    assert served.specs["from_constituents"]["pid"] == {"dtype": "int32", "shape": [-1, -1]}

    image = render(batch, spec)
    assert image[..., 0].sum() > 0 and image[..., 1].sum() > 0
    probs = model.predict({"image": image}, verbose=0)
    raw = {"constituents": np.stack([batch.pt, batch.eta, batch.phi, batch.energy], axis=-1),
           "jet": np.stack([batch.jet_pt, batch.jet_eta, batch.jet_phi, batch.jet_mass], axis=-1),
           "pid": batch.pid.astype(np.int32)}
    _assert_answers(served.predict("from_constituents", raw), probs)
    _assert_answers(served.predict("serving_default", image=image), probs)


def test_particle_model_serves_constituents(pythia_jets, tmp_path):
    """PFN: serving_default takes the constituents themselves; from_constituents passes them on."""
    import jettf.models as zoo
    from jettf.serving import ServedModel, export_run

    jets = pythia_jets("top_tagging", n_jets=4, seed=1)
    raw = {"constituents": np.stack([jets.pt, jets.eta, jets.phi, jets.energy], axis=-1),
           "jet": np.stack([jets.jet_pt, jets.jet_eta, jets.jet_phi, jets.jet_mass], axis=-1)}

    model = zoo.build("pfn", 2, phi_sizes=(8, 8), f_sizes=(8,), class_names=["gluon", "quark"], seed=2)
    run = _synthetic_run(tmp_path / "pfn", model, ["constituents"])
    served = ServedModel(export_run(run, out=tmp_path / "sm" / "pfn", log=lambda m: None))
    assert served.specs["serving_default"] == {"constituents": {"dtype": "float32", "shape": [-1, -1, 4]}}
    assert served.metadata["image_spec"] is None
    probs = model.predict({"constituents": raw["constituents"]}, verbose=0)
    _assert_answers(served.predict("serving_default", constituents=raw["constituents"]), probs)
    _assert_answers(served.predict("from_constituents", constituents=raw["constituents"], jet=raw["jet"]), probs)
