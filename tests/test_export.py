"""TF-Serving export (``python -m jettf.export``) and the request builders of :mod:`jettf.serving`.

Tiny real training runs (LeNet with global features, so both the image and the feature paths are exported)
are trained once per module: on TensorFlow with images densified in tf.data (``--densify host``) and inside the
model (``--densify device``), and on JAX in a background process that runs alongside the TensorFlow tests. References are computed independently: the numpy
renderer, fastjet-contrib features and Keras' own ``predict`` of ``model.keras`` on those images. Requests go
through ``tests/tf_serving.py``, a local stand-in for the TF-Serving server.
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
from tf_serving import RequestError, ServedModel

REPO = Path(__file__).resolve().parents[1]
KINEMATICS = ("jet_pt", "jet_eta", "jet_phi", "jet_mass", "n_constituents")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
#: One epoch of 002's setup in miniature: 40x40 (pt, mass, energy) images, standardized with a floor, cropped to
#: 32, random flips, 47 global features; 30 Pythia jets per class.
TRAIN = ["--task", "binary", "--dataset", "top_tagging_images/quick", "--model", "lenet", "--quick",
         "--global-features", "--n-jets", "30", "--epochs", "1", "--n-boot", "0", "--batch-size", "32"]
JAX_TIMEOUT_S = 600


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("export_data")


def _train(data_dir, out, *extra) -> Path:
    from jettf import train

    assert train.main([*TRAIN, *extra, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    """A finished TF run whose images were densified in tf.data."""
    return _train(data_dir, tmp_path_factory.mktemp("runs") / "lenet-gf", "--densify", "host")


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    from jettf.serving import export_run

    base = tmp_path_factory.mktemp("saved_models") / "tagger"
    return export_run(run_dir, out=base, log=lambda m: None)


@pytest.fixture(scope="module")
def served(exported):
    return ServedModel(exported)


@pytest.fixture(scope="module")
def reference(run_dir, pythia_jets):
    """Raw jets, their rendered images (numpy renderer) and fastjet features, and model.keras' predictions."""
    from jettf.features import FeatureSpec, compute_features
    from jettf.images import ImageSpec, render
    from jettf.training import load_tagger

    resolved = json.loads((run_dir / "config.json").read_text())["resolved"]
    batch = pythia_jets("top_tagging", n_jets=4, seed=1)  # 8 jets, zero-padded to the widest
    image = render(batch, ImageSpec.from_dict(resolved["image_spec"]))
    features, names = compute_features(batch, FeatureSpec.from_dict(resolved["feature_spec"]))
    assert names == resolved["feature_names"]
    probs = load_tagger(run_dir).predict({"image": image, "global_features": features}, verbose=0)
    constituents = np.stack([batch.pt, batch.eta, batch.phi, batch.energy], axis=-1).astype(np.float32)
    jet = np.stack([batch.jet_pt, batch.jet_eta, batch.jet_phi, batch.jet_mass], axis=-1).astype(np.float32)
    substructure = features[:, [i for i, n in enumerate(names) if n not in KINEMATICS]]
    return {
        "batch": batch, "resolved": resolved, "probs": probs,
        "serving_default": {"image": image, "global_features": features},
        "from_constituents": {"constituents": constituents, "jet": jet, "substructure_features": substructure},
    }


@pytest.fixture(scope="module", autouse=True)
def jax_run(request, tmp_path_factory):
    """If the JAX test is selected: train the same run under KERAS_BACKEND=jax in a background process, which
    then predicts the reference images with the JAX model, checks that export refuses to run under JAX, and
    exports with the CLI (still under KERAS_BACKEND=jax); it runs alongside the TensorFlow tests and
    ``test_jax_trained_run_exports_through_tensorflow`` collects it."""
    if not any(item.name == "test_jax_trained_run_exports_through_tensorflow" for item in request.session.items):
        yield None
        return
    data_dir = request.getfixturevalue("data_dir")
    request.getfixturevalue("run_dir")  # the dataset is built: the JAX process only reads it
    reference = request.getfixturevalue("reference")
    tmp = tmp_path_factory.mktemp("jax")
    run, base = tmp / "jax-run", tmp / "sm" / "jax"
    np.savez(tmp / "in.npz", **reference["serving_default"])
    script = f"""
        import json, subprocess, sys
        import keras, numpy as np
        from jettf import train
        from jettf.serving import export_run
        from jettf.training import load_tagger
        assert keras.backend.backend() == "jax"
        assert train.main({[*TRAIN, "--data-dir", str(data_dir), "--out", str(run)]!r}) == 0
        x = dict(np.load({str(tmp / "in.npz")!r}))
        np.save({str(tmp / "jax_probs.npy")!r}, np.asarray(load_tagger({str(run)!r}).predict(x, verbose=0)))
        try:
            export_run({str(run)!r}, out={str(tmp / "never")!r})
        except RuntimeError as err:
            print("REFUSED:", err, flush=True)
        cli = subprocess.run([sys.executable, "-m", "jettf.export", {str(run)!r}, "--out", {str(base)!r},
                              "--format", "onnx"],
                             capture_output=True, text=True, timeout={JAX_TIMEOUT_S})  # KERAS_BACKEND=jax inherited
        with open({str(tmp / "cli.json")!r}, "w") as f:
            json.dump({{"returncode": cli.returncode, "stdout": cli.stdout, "stderr": cli.stderr}}, f)
    """
    log = tmp / "log.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=out, stderr=subprocess.STDOUT,
                                env={**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
    yield {"proc": proc, "log": log, "dir": tmp, "run": run, "base": base}
    if proc.poll() is None:  # the test failed early or was interrupted
        proc.kill()
        proc.wait()


def _run_python(code: str, env=None, timeout=400) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env or ENV, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def _assert_answers(outputs, probs, atol=1e-5):
    np.testing.assert_allclose(np.asarray(outputs["probabilities"], np.float32), probs, atol=atol, rtol=0)
    np.testing.assert_array_equal(np.asarray(outputs["class_ids"]), probs.argmax(axis=1))


# ----------------------------------------------------------------------------- layout, metadata
def test_layout_metadata_and_model_card(exported, run_dir):
    document = json.loads((run_dir / "config.json").read_text())
    resolved = document["resolved"]
    assert exported.name == "1" and exported.parent.name == "tagger"
    assert all(p.name.isdigit() for p in exported.parent.iterdir())  # no temporary left behind
    for name in ("saved_model.pb", "variables/variables.index", "assets/jettf_model.json", "model_card.md"):
        assert (exported / name).exists(), name
    # The model carries its preparation: no side files, in the run or in the export.
    assert [p.name for p in (exported / "assets").iterdir()] == ["jettf_model.json"]
    assert not (run_dir / "preprocessing.npz").exists()

    meta = json.loads((exported / "assets" / "jettf_model.json").read_text())
    assert meta["class_names"] == resolved["class_names"] == ["qcd", "top"]
    assert meta["image_spec"] == resolved["image_spec"] and meta["feature_spec"] == resolved["feature_spec"]
    assert meta["dataset_fingerprint"] == resolved["dataset_fingerprint"]
    assert meta["metrics"]["test"]["auc"] == json.loads((run_dir / "metrics.json").read_text())["test"]["auc"]
    substructure = [n for n in resolved["feature_names"] if n not in KINEMATICS]
    assert meta["features_as_input"] == substructure and list(meta["features_computed_in_graph"]) == list(KINEMATICS)
    prep = meta["preparation"]
    assert (prep["standardize"], prep["std_floor"], prep["crop"], prep["input_shape"], prep["output_shape"]) == \
        (True, 0.05, 32, [40, 40, 3], [32, 32, 3])
    assert prep["training_flips"] == ["eta", "phi"] and "densify" not in prep
    assert meta["model"]["trained_densify"] == "host" and meta["model"]["trained_with_backend"] == "tensorflow"
    sigs = meta["signatures"]
    assert sigs["serving_default"]["inputs"]["image"]["shape"] == [-1, 40, 40, 3]  # as rendered, before the crop
    assert sigs["serving_default"]["inputs"]["global_features"]["columns"] == resolved["feature_names"]
    assert sigs["from_constituents"]["inputs"]["substructure_features"]["columns"] == substructure
    assert "centred on the hardest" in sigs["from_constituents"]["inputs"]["jet"]["doc"]
    assert set(sigs["from_constituents"]["outputs"]) == {"probabilities", "class_ids"}

    card = (exported / "model_card.md").read_text()
    for text in ("`qcd`", "`top`", "docker run", "tensorflow/serving", f"source={exported.parent.resolve()},",
                 "from_constituents", "substructure_features", "tau32_b1", resolved["dataset_fingerprint"],
                 f"saved_model_cli show --dir {exported.resolve()} --all", "centre crop 40x40 -> 32x32",
                 "at least 0.05 x the channel's largest pixel std", "flips along eta and phi were applied in training",
                 '{"image": images, "global_features": features}'):
        assert text in card, text
    for text in ("ServedModel", "preprocessing.npz", "saved_models/tagger"):
        assert text not in card, text


def test_model_card_code_runs(exported, reference):
    """The card's substructure and no-server snippets, run as written on the reference jets, give Keras' answer."""
    card = (exported / "model_card.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    features = next(s for s in snippets if "compute_features" in s)
    local = next(s for s in snippets if "tf.saved_model.load" in s)
    raw = reference["from_constituents"]
    scope = {"batch": reference["batch"], "constituents": raw["constituents"], "jet": raw["jet"]}
    exec(features, scope)  # noqa: S102 - the documented code itself
    np.testing.assert_array_equal(scope["sub"], raw["substructure_features"])
    exec(local, scope)  # noqa: S102
    _assert_answers({"probabilities": scope["probabilities"], "class_ids": scope["probabilities"].argmax(1)},
                    reference["probs"])


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
        "inputs": {"image": ("DT_FLOAT", "(-1, 40, 40, 3)"), "global_features": ("DT_FLOAT", "(-1, 47)")},
        "outputs": out}
    assert defs["from_constituents"] == {
        "inputs": {"constituents": ("DT_FLOAT", "(-1, -1, 4)"), "jet": ("DT_FLOAT", "(-1, 4)"),
                   "substructure_features": ("DT_FLOAT", "(-1, 42)")},
        "outputs": out}
    assert "Method name is: tensorflow/serving/predict" in result.stdout


# ----------------------------------------------------------------------------- predictions
def test_fresh_process_predictions_equal_keras_and_numpy_renderer(exported, reference, tmp_path):
    """serving_default is the bare tagger on the rendered image; from_constituents = render_tf -> tagger: both
    reproduce model.keras on numpy-rendered images to 1e-5, in a process that never imported jettf."""
    np.savez(tmp_path / "in.npz", **{f"{sig}.{k}": v for sig in ("serving_default", "from_constituents")
                                     for k, v in reference[sig].items()})
    _run_python(f"""
        import sys, numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(exported)!r})
        inputs = dict(np.load({str(tmp_path / "in.npz")!r}))
        out = {{}}
        for sig in ("serving_default", "from_constituents"):
            args = {{k.split(".", 1)[1]: tf.constant(v) for k, v in inputs.items() if k.startswith(sig + ".")}}
            for name, value in loaded.signatures[sig](**args).items():
                out[sig + "." + name] = value.numpy()
        assert not [m for m in sys.modules if m.startswith("jettf")]  # no custom code is needed
        np.savez({str(tmp_path / "out.npz")!r}, **out)
    """)
    out = dict(np.load(tmp_path / "out.npz"))
    for sig in ("serving_default", "from_constituents"):
        assert out[f"{sig}.probabilities"].dtype == np.float32 and out[f"{sig}.class_ids"].dtype == np.int64
        _assert_answers({k: out[f"{sig}.{k}"] for k in ("probabilities", "class_ids")}, reference["probs"])
    assert len(np.unique(reference["probs"][:, 1].round(4))) > 4  # a real comparison, not a constant output


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


def test_grpc_predict_request_is_answered(served, reference):
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
    empty = raw["constituents"].copy()
    empty[3] = 0.0  # jet 3 has no constituents left
    zero_pt = raw["jet"].copy()
    zero_pt[5, 0] = 0.0
    return {
        "wrong image size": ("predict", "serving_default", {**good, "image": good["image"][:, :39]},
                             "input 'image' must have shape \\[N, 40, 40, 3\\], got \\[8, 39, 40, 3\\]"),
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
        "jet without constituents (graph check)": (
            "rest", "from_constituents", {**raw, "constituents": empty},
            "from_constituents: input 'constituents' has a jet without constituents"),
        "jet pt 0 (graph check)": ("grpc", "from_constituents", {**raw, "jet": zero_pt},
                                   "from_constituents: input 'jet' has a jet pt <= 0"),
        "unknown signature": ("rest", "predict_jets", good, "signature_name 'predict_jets' not found"),
    }


@pytest.mark.parametrize("case", ["wrong image size", "wrong dtype (numpy)", "wrong dtype (gRPC)", "strings in JSON",
                                  "NaN (numpy)", "NaN (JSON)", "missing input", "unknown input", "batch sizes differ",
                                  "4 columns expected", "negative pt (graph check)",
                                  "jet without constituents (graph check)", "jet pt 0 (graph check)",
                                  "unknown signature"])
def test_bad_requests_fail_clearly(served, reference, case):
    from jettf.serving import make_predict_request

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


def test_graph_itself_refuses_bad_inputs(exported, reference):
    """Without any helper (as inside TF-Serving), the signatures' own checks stop bad tensors, naming the input
    and, for jets that are not physical, their batch indices."""
    import tensorflow as tf

    sig = tf.saved_model.load(str(exported)).signatures
    good = {k: tf.constant(v) for k, v in reference["serving_default"].items()}
    raw = {k: tf.constant(v) for k, v in reference["from_constituents"].items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input \\?'image\\?' must have shape \(N, 40, 40, 3\)"):
        sig["serving_default"](**{**good, "image": good["image"][:, :, :30]})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"global_features\\?' holds NaN or Inf"):
        sig["serving_default"](**{**good, "global_features": good["global_features"] * np.inf})
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have the same batch size"):
        sig["from_constituents"](**{**raw, "substructure_features": raw["substructure_features"][:3]})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"jet\\?' must have shape \(N, 4\)"):
        sig["from_constituents"](**{**raw, "jet": raw["jet"][:, :3]})
    empty = reference["from_constituents"]["constituents"].copy()
    empty[[2, 6]] = 0.0
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input \\?'constituents\\?' has a jet without constituents .* batch indices\] \[2 6\]"):
        sig["from_constituents"](**{**raw, "constituents": tf.constant(empty)})
    for value in (0.0, -30.0):
        jet = reference["from_constituents"]["jet"].copy()
        jet[4, 0] = value
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"input \\?'jet\\?' has a jet pt <= 0 .* batch indices\] \[4\]"):
            sig["from_constituents"](**{**raw, "jet": tf.constant(jet)})


# ----------------------------------------------------------------------------- versions, CLI
def test_versions_are_never_overwritten(run_dir, exported, capsys):
    from jettf.export import main
    from jettf.serving import export_run

    with pytest.raises(FileExistsError, match="never overwritten"):
        export_run(run_dir, out=exported.parent, version=1)
    with pytest.raises(ValueError, match="positive integer"):
        export_run(run_dir, out=exported.parent, version=0)
    capsys.readouterr()
    assert main([str(run_dir), "--out", str(exported.parent), "--version", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m jettf.export: error: ") and "already exists" in err[-1]
    assert main([str(run_dir.parent / "nope"), "--out", str(exported.parent)]) == 2
    assert "not a jettf run directory" in capsys.readouterr().err
    assert all(p.name.isdigit() for p in exported.parent.iterdir())
    assert json.loads((exported / "assets" / "jettf_model.json").read_text())["version"] == 1


# ----------------------------------------------------------------------------- training variants
def test_device_and_host_densified_runs_serve_alike(data_dir, run_dir, exported, served, reference, tmp_path):
    """A run that densified its sparse pixels inside the model and one that densified them in tf.data save the
    same tagger: the same serving interface (dense rendered images), and the same answers for the same weights."""
    from jettf.serving import export_run
    from jettf.training import load_tagger

    device_run = _train(data_dir, tmp_path / "device", "--densify", "device")
    assert json.loads((device_run / "config.json").read_text())["resolved"]["densify"] == "device"
    host, device = load_tagger(run_dir), load_tagger(device_run)
    assert [(t.name, tuple(t.shape)) for t in device.inputs] == [(t.name, tuple(t.shape)) for t in host.inputs]
    assert [w.shape for w in device.weights] == [w.shape for w in host.weights]

    # The same weights in both: the same serving interface and the same answers, signature by signature.
    device.set_weights(host.get_weights())
    device.save(device_run / "model.keras")
    swapped = ServedModel(export_run(device_run, out=tmp_path / "sm" / "device", log=lambda m: None))
    assert swapped.metadata["model"]["trained_densify"] == "device"
    assert swapped.specs == served.specs
    for signature in ("serving_default", "from_constituents"):
        a = swapped.predict(signature, reference[signature])["probabilities"]
        b = served.predict(signature, reference[signature])["probabilities"]
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
        np.testing.assert_allclose(a, reference["probs"], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- other inputs
def _synthetic_run(path: Path, model) -> Path:
    """A minimal run directory (config.json + model.keras) around an untrained zoo tagger."""
    path.mkdir(parents=True)
    document = {"config": {"model": model.name, "task": "binary"},
                "resolved": {"class_names": ["gluon", "quark"], "dataset": "synthetic",
                             "dataset_fingerprint": "0" * 16, "accelerator": {"backend": "tensorflow"}}}
    (path / "config.json").write_text(json.dumps(document))
    model.save(path / "model.keras")
    return path


@pytest.mark.parametrize("channels, extra", [
    (("charged_pt", "em", "had"), ["pid"]),  # charges and the generator-level EM/hadron split, both from PDG ids
    (("tracks", "ecal", "hcal"), ["subdetector"]),  # detector-level tags
], ids=["pid", "subdetector"])
def test_per_particle_channels_and_subjet_rotation_run_in_graph(pythia_jets, tmp_path, channels, extra):
    """Channels that need PDG ids or subdetector tags take them as inputs; centring and rotating on kT subjets
    happen inside the graph."""
    import jettf.models as zoo
    from jettf.images import ImagePreparation, ImageSpec, render
    from jettf.jets import JetBatch
    from jettf.serving import export_run

    jets = pythia_jets("quark_gluon", n_jets=3)
    tags = None
    if extra == ["subdetector"]:  # any tags do for the renderer: it sums each subdetector's deposits per pixel
        tags = np.where(jets.mask, np.random.default_rng(0).integers(1, 4, jets.pt.shape), 0).astype(np.int8)
    batch = JetBatch.from_ptetaphie(jets.pt, jets.eta, jets.phi, jets.energy, jets.mask, pid=jets.pid,
                                    subdetector=tags, jet_pt=jets.jet_pt, jet_eta=jets.jet_eta,
                                    jet_phi=jets.jet_phi, jet_mass=jets.jet_mass)  # charges come from pid
    spec = ImageSpec(npix=16, extent=0.4, channels=channels, center="leading_subjet", rotate="subjet", flip=True)
    tagger = zoo.build("lenet", 2, preparation=ImagePreparation(spec, crop=12), filters=(4, 4), kernel_size=3,
                       dense_units=(8,), class_names=["gluon", "quark"], seed=1)
    run = _synthetic_run(tmp_path / "run", tagger)
    served = ServedModel(export_run(run, out=tmp_path / "sm", log=lambda m: None))
    assert list(served.specs["from_constituents"]) == ["constituents", "jet", *extra]
    assert served.specs["from_constituents"][extra[0]] == {"dtype": "int32", "shape": [-1, -1]}
    assert served.metadata["preparation"]["crop"] == 12

    image = render(batch, spec)
    assert all(image[..., c].sum() > 0 for c in range(3))
    probs = tagger.predict({"image": image}, verbose=0)
    raw = {"constituents": np.stack([batch.pt, batch.eta, batch.phi, batch.energy], axis=-1),
           "jet": np.stack([batch.jet_pt, batch.jet_eta, batch.jet_phi, batch.jet_mass], axis=-1),
           extra[0]: (batch.pid if tags is None else tags).astype(np.int32)}
    _assert_answers(served.predict("from_constituents", raw), probs)
    _assert_answers(served.predict("serving_default", image=image), probs)


def test_particle_model_serves_constituents(pythia_jets, tmp_path):
    """PFN: serving_default takes the constituents themselves; from_constituents passes them on."""
    import jettf.models as zoo
    from jettf.serving import export_run

    jets = pythia_jets("top_tagging", n_jets=4, seed=1)
    raw = {"constituents": np.stack([jets.pt, jets.eta, jets.phi, jets.energy], axis=-1),
           "jet": np.stack([jets.jet_pt, jets.jet_eta, jets.jet_phi, jets.jet_mass], axis=-1)}

    model = zoo.build("pfn", 2, phi_sizes=(8, 8), f_sizes=(8,), class_names=["gluon", "quark"], seed=2)
    run = _synthetic_run(tmp_path / "pfn", model)
    served = ServedModel(export_run(run, out=tmp_path / "sm" / "pfn", log=lambda m: None))
    assert served.specs["serving_default"] == {"constituents": {"dtype": "float32", "shape": [-1, -1, 4]}}
    assert served.metadata["image_spec"] is None and served.metadata["preparation"] is None
    probs = model.predict({"constituents": raw["constituents"]}, verbose=0)
    _assert_answers(served.predict("serving_default", constituents=raw["constituents"]), probs)
    _assert_answers(served.predict("from_constituents", constituents=raw["constituents"], jet=raw["jet"]), probs)


# ----------------------------------------------------------------------------- JAX (collected last)
def test_jax_trained_run_exports_through_tensorflow(jax_run, reference):
    """Trained under KERAS_BACKEND=jax (its own process), exported under TensorFlow by the CLI started with
    KERAS_BACKEND=jax still set: from_constituents reproduces the JAX model's predictions on numpy-rendered
    images to 1e-5."""
    assert jax_run is not None, "the JAX run was not started"
    proc = jax_run["proc"]
    try:
        proc.wait(timeout=JAX_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        pytest.fail(f"the JAX run exceeded {JAX_TIMEOUT_S} s")
    log = jax_run["log"].read_text()
    assert proc.returncode == 0, log[-4000:]
    assert "REFUSED:" in log and "needs Keras' TensorFlow backend" in log and "'jax'" in log  # in a JAX process
    assert not (jax_run["dir"] / "never").exists()
    resolved = json.loads((jax_run["run"] / "config.json").read_text())["resolved"]
    assert resolved["accelerator"]["backend"] == "jax"
    assert resolved["image_spec"] == reference["resolved"]["image_spec"]
    assert resolved["feature_names"] == reference["resolved"]["feature_names"]

    cli = json.loads((jax_run["dir"] / "cli.json").read_text())
    assert cli["returncode"] == 0, cli["stderr"][-3000:]
    assert cli["stdout"].strip() == str(jax_run["base"] / "1") and "KERAS_BACKEND=jax ignored" in cli["stderr"]
    jax_probs = np.load(jax_run["dir"] / "jax_probs.npy")
    served = ServedModel(jax_run["base"] / "1")
    assert served.metadata["model"]["trained_with_backend"] == "jax"
    _assert_answers(served.predict("from_constituents", reference["from_constituents"]), jax_probs)
    _assert_answers(served.predict("serving_default", reference["serving_default"]), jax_probs)
    for signature in ("serving_default", "from_constituents"):  # ONNX Runtime agrees with the JAX model too
        np.testing.assert_allclose(_onnx_run(jax_run["base"] / "1", signature, reference[signature])[0], jax_probs,
                                   rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- ONNX
def _onnx_run(version_dir, signature, inputs):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(version_dir / f"{signature}.onnx"), providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name] for i in session.get_inputs()}
    return session.run(["probabilities", "class_ids"], feeds)


def test_onnx_files_reproduce_the_keras_model_on_pythia_jets(run_dir, reference, tmp_path):
    """--format onnx: both signatures as ONNX files beside the SavedModel; ONNX Runtime gives model.keras'
    probabilities to 1e-5 from the rendered images and from the raw constituents."""
    from jettf.serving import export_run
    from jettf.serving.export import main as export_main

    assert export_main([str(run_dir), "--out", str(tmp_path / "sm"), "--format", "onnx"]) == 0
    version = tmp_path / "sm" / "1"
    meta = json.loads((version / "assets" / "jettf_model.json").read_text())
    assert {s: r.get("file") for s, r in meta["onnx"].items()} == {
        "serving_default": "serving_default.onnx", "from_constituents": "from_constituents.onnx"}
    assert meta["onnx"]["from_constituents"]["inputs"] == ["constituents", "jet", "substructure_features"]
    assert "## ONNX" in (version / "model_card.md").read_text()
    for signature in ("serving_default", "from_constituents"):
        probs, class_ids = _onnx_run(version, signature, reference[signature])
        np.testing.assert_allclose(probs, reference["probs"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(class_ids, reference["probs"].argmax(axis=1))
    plain = export_run(run_dir, out=tmp_path / "plain", log=lambda m: None)  # the default writes no ONNX
    assert not list(plain.glob("*.onnx")) and "onnx" not in json.loads(
        (plain / "assets" / "jettf_model.json").read_text())


@pytest.mark.parametrize("name", ["effnet_s", "lenet", "resnet15", "deeptop", "calo_cnn", "ensemble_resize"])
def test_every_image_model_of_the_zoo_converts_to_onnx(name, tmp_path):
    """Each image architecture behind an ImagePreparation (standardize + crop) and flips: its inference graph, saved
    as the export saves it, converts and runs in ONNX Runtime with Keras' probabilities to 1e-5.

    ``ensemble_resize`` is the one layer of the ensemble that is not a stock Keras application (its
    antialiased ResNet50 resize, ``SeparableResize``), in front of LeNet: tf2onnx converts the whole
    ensemble too, but at a peak of 17.6 GB of memory (75 s; README, Serving), more than CI can spare.
    """
    import keras
    import tensorflow as tf

    import jettf.models as zoo
    from jettf.images import ImagePreparation, ImageSpec
    from jettf.models.layers import SeparableResize
    from jettf.models.smoke import TINY
    from jettf.serving.onnx import convert_signatures

    tiny = TINY["lenet" if name == "ensemble_resize" else name]
    side, channels = tiny["input_shape"][0], tiny["input_shape"][2]
    names = ("pt", "mass", "energy")[:channels] if channels <= 3 else None
    spec = ImageSpec(npix=side + 4, extent=1.0, channels=names)
    rng = np.random.default_rng(0)
    prep = ImagePreparation(spec, standardize=True, pixel_mean=rng.random(spec.shape), crop=side,
                            pixel_std=rng.random(spec.shape) + 0.1)
    tagger = zoo.build("lenet" if name == "ensemble_resize" else name, tiny["n_classes"], preparation=prep,
                       flips="both", seed=0, **tiny["options"])
    if name == "ensemble_resize":  # the ensemble's downsampling to ResNet50's size, in front
        image = keras.Input(shape=(side + 12, side + 12, channels), name="image")
        resized = SeparableResize(*spec.shape[:2], antialias=True, name="resnet50_resize")(image)
        tagger = keras.Model({"image": image}, tagger({"image": resized}))
        spec = ImageSpec(npix=side + 12, extent=1.0, channels=names)
    x = rng.exponential(1.0, (3, *spec.shape)).astype("float32")
    expected = tagger.predict({"image": x}, verbose=0)
    function = tf.function(lambda image: {"probabilities": tagger({"image": image}, training=False)},
                           input_signature=[tf.TensorSpec([None, *spec.shape], tf.float32, name="image")])
    module = tf.Module()
    module.variables_ = tagger.variables
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": function.get_concrete_function()})
    result = convert_signatures(tmp_path / "sm", ["serving_default"], tmp_path)["serving_default"]
    assert "file" in result, result
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / result["file"]), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"image": x})[0], expected, rtol=1e-5, atol=1e-5)
