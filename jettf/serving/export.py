"""Export a training run as a TF-Serving SavedModel: ``python -m jettf.export RUN_DIR``.

Layout (TF-Serving's: a model base directory holding integer versions)::

    saved_models/NAME/
      1/                       one export; a new export gets the next integer
        saved_model.pb         graph with the signatures below
        variables/             the trained weights
        assets/jettf_model.json  machine-readable metadata (class names, specs, signatures, metrics)
        assets/preprocessing.npz per-pixel mean/std (standardized runs), to prepare serving_default images
        model_card.md          the same for people, with how to query it
        fingerprint.pb

A version directory is written under a temporary name and renamed when
complete, so TF-Serving (which polls the base directory) never sees half an
export, and an existing version is never overwritten.

Signatures (outputs of both: ``probabilities`` float32 ``[N, n_classes]``, the
softmax in :attr:`class_names` order, and ``class_ids`` int64 ``[N]``, its argmax):

``serving_default``
    the model's own inputs, prepared as in training: ``image`` float32
    ``[N, H, W, C]`` (standardized with the training split's per-pixel mean and
    std, centre-cropped, ... exactly :func:`jettf.data.pipeline.prepare_dense_tf`
    without flips), plus ``global_features`` float32 ``[N, F]`` (raw values; the
    model standardizes them) when the model fuses global features. A run trained
    with ``densify="device"`` (sparse pixels in, :class:`jettf.data.SparseImagePrep`
    as its first layer) is served with the same dense ``image`` input: the sparse
    form is a training-time transfer optimisation, not an interface. Particle
    models (``pfn``, ``efn``) take ``constituents`` ``[N, M, 4]`` here.

``from_constituents``
    the raw jet: ``constituents`` float32 ``[N, M, 4]`` (pt [GeV], eta, phi [rad],
    energy [GeV]; zero-padded, a row with pt = 0 is padding; send *all* of the
    jet's constituents, as the training images were rendered from all of them)
    and ``jet`` float32 ``[N, 4]`` (pt [GeV], eta, phi [rad], mass [GeV]; the jet
    axis centres the image). The graph renders the image with
    :func:`jettf.images.render_tf` and the run's ImageSpec, applies the run's
    preparation and calls the model. Channels that need charges add ``pid`` int32
    ``[N, M]`` (PDG ids). Of the global features, the jet kinematics and
    ``n_constituents`` are computed in the graph; the substructure observables
    (N-subjettiness, ECF series, EFPs) need fastjet-contrib, so the signature takes
    those -- and only those -- as ``substructure_features`` float32 ``[N, F_sub]``,
    in the column order listed in the metadata and the model card.

Every signature checks its inputs in the graph (rank, fixed dimensions, equal
batch sizes, finite values, pt >= 0) and fails with a message naming the input,
never with a silently wrong answer.

Backends: the export runs on Keras' TensorFlow backend. ``model.keras`` files are
backend-independent, so a run trained with ``KERAS_BACKEND=jax`` exports the same
way; the CLI selects the TensorFlow backend itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["export_run", "main", "METADATA_FILE", "MODEL_CARD_FILE", "PREPROCESSING_FILE", "SIGNATURES",
           "IN_GRAPH_FEATURES", "METADATA_FORMAT"]

SERVING_DEFAULT = "serving_default"
FROM_CONSTITUENTS = "from_constituents"
#: The signatures every export has.
SIGNATURES = (SERVING_DEFAULT, FROM_CONSTITUENTS)
#: Metadata file in the version's ``assets/`` directory.
METADATA_FILE = "jettf_model.json"
#: Human-readable card in the version directory (TF-Serving ignores files it does not know).
MODEL_CARD_FILE = "model_card.md"
METADATA_FORMAT = "jettf-serving/1"
#: Per-pixel ``pixel_mean`` / ``pixel_std`` (std 0 already replaced by 1) in ``assets/``, for clients that
#: prepare ``serving_default`` images themselves; the graph holds the same arrays.
PREPROCESSING_FILE = "preprocessing.npz"
#: Global features the ``from_constituents`` graph computes from its inputs (FeatureSpec names).
IN_GRAPH_FEATURES = {
    "jet_pt": "jet[:, 0]",
    "jet_eta": "jet[:, 1]",
    "jet_phi": "jet[:, 2]",
    "jet_mass": "jet[:, 3]",
    "n_constituents": "number of constituents with pt > 0",
}
OUTPUTS = {
    "probabilities": {"dtype": "float32", "shape": [-1, "n_classes"],
                      "doc": "softmax class probabilities, columns in class_names order"},
    "class_ids": {"dtype": "int64", "shape": [-1], "doc": "argmax of probabilities (index into class_names)"},
}


# ----------------------------------------------------------------------------- backend
def _require_tensorflow_backend():
    """Import Keras on its TensorFlow backend (selecting it if Keras is not imported yet)."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"jettf.export writes TensorFlow SavedModels and needs Keras' TensorFlow backend, but Keras was "
            f"imported with the {backend!r} backend in this process. Export in a separate process: "
            f"`KERAS_BACKEND=tensorflow python -m jettf.export RUN_DIR` (a model.keras trained under "
            f"{backend} loads under TensorFlow unchanged)."
        )
    return keras


# ----------------------------------------------------------------------------- plan
@dataclasses.dataclass
class _Plan:
    """What an export of one run contains (no TensorFlow objects)."""

    run_dir: Path
    config: dict
    metrics: dict
    input_kind: str  # "image" or "constituents"
    image_spec: object  # ImageSpec or None
    prep: object  # ImagePrep (densify="host") or None
    feature_names: list
    in_graph: list  # features computed in from_constituents
    external: list  # features from_constituents takes as substructure_features
    needs_pid: bool
    class_names: list
    model_input_shape: tuple  # non-batch shape of the primary model input (dims may be None)

    @property
    def uses_features(self) -> bool:
        return bool(self.feature_names)

    def signature_inputs(self) -> dict:
        """``{signature: {input: {"dtype", "shape" (-1 = any), "doc", ["columns"]}}}`` in argument order."""
        kind, shape = self.input_kind, [-1] + [(-1 if d is None else int(d)) for d in self.model_input_shape]
        serve = {}
        if kind == "image":
            serve["image"] = {"dtype": "float32", "shape": shape, "doc": _image_doc(self)}
        else:
            serve["constituents"] = {"dtype": "float32", "shape": shape,
                                     "doc": "constituents (pt [GeV], eta, phi [rad], energy [GeV]), zero-padded",
                                     "columns": ["pt", "eta", "phi", "energy"]}
        if self.uses_features:
            serve["global_features"] = {"dtype": "float32", "shape": [-1, len(self.feature_names)],
                                        "doc": "raw (unstandardized) global jet features, FeatureSpec columns",
                                        "columns": list(self.feature_names)}
        raw = {
            "constituents": {"dtype": "float32", "shape": [-1, -1, 4], "columns": ["pt", "eta", "phi", "energy"],
                             "doc": "all constituents of each jet: pt [GeV], eta, phi [rad], energy [GeV]; "
                                    "zero-padded (pt = 0 marks padding); any M"},
            "jet": {"dtype": "float32", "shape": [-1, 4], "columns": ["pt", "eta", "phi", "mass"],
                    "doc": "jet pt [GeV], eta, phi [rad], mass [GeV]; (eta, phi) is the image axis"},
        }
        if self.needs_pid:
            raw["pid"] = {"dtype": "int32", "shape": [-1, -1],
                          "doc": "PDG id of each constituent like constituents[..., 0] (0 for padding); "
                                 "charged channels use |pid| in jettf.images.channels.CHARGED_PIDS"}
        if self.external:
            raw["substructure_features"] = {
                "dtype": "float32", "shape": [-1, len(self.external)], "columns": list(self.external),
                "doc": "global features the graph cannot compute (fastjet-contrib N-subjettiness, ECFs, EFPs), "
                       "raw values from jettf.features.compute_features with the FeatureSpec, in this order"}
        return {SERVING_DEFAULT: serve, FROM_CONSTITUENTS: raw}


def _image_doc(plan) -> str:
    p = plan.prep
    steps = []
    if p.standardize:
        steps.append(f"standardized per pixel, (x - pixel_mean) / pixel_std from assets/{PREPROCESSING_FILE}")
    if p.crop is not None and p.crop != p.npix:
        steps.append(f"centre-cropped {p.npix} -> {p.crop}")
    if p.to_rgb:
        steps.append(f"to RGB ({p.to_rgb})")
    if p.resize:
        steps.append(f"resized to {p.resize}")
    how = ", ".join(steps) or "as rendered (no preparation)"
    return f"jet image rendered with the ImageSpec, {how}; axis 1 = eta, axis 2 = phi"


def _plan(run_dir) -> _Plan:
    from jettf.data.pipeline import ImagePrep
    from jettf.features import FeatureSpec
    from jettf.images import ImageSpec
    from jettf.images.channels import needs_charge
    from jettf.training.run_dir import RunDir

    run = RunDir(run_dir)
    config = run.read_config()
    where = run.config_path
    if config.get("seed_dirs"):
        raise ValueError(f"{run.path}: a multi-seed run (seed_dirs {config['seed_dirs']}); export one seed's "
                         f"directory, e.g. {run.path / config['seed_dirs'][0]}")
    for key in ("model", "class_names", "inputs"):
        if key not in config:
            raise ValueError(f"{where}: field {key!r} missing; expected a config written by jettf.train")
    if not run.model_path.exists():
        raise FileNotFoundError(f"{run.model_path}: no such file; the run has not finished (resume it with "
                                f"`python -m jettf.train --resume {run.path}`)")
    inputs = list(config["inputs"])
    kind = "constituents" if "constituents" in inputs else "image"
    image_spec = prep = None
    needs_pid = False
    if kind == "image":
        if not config.get("image_spec") or not config.get("image_prep"):
            raise ValueError(f"{where}: an image model's config needs 'image_spec' and 'image_prep'")
        image_spec = ImageSpec.from_dict(config["image_spec"])
        desc = dict(config["image_prep"])
        mean = std = None
        if desc.get("standardize"):
            if not run.preprocessing_path.exists():
                raise FileNotFoundError(f"{run.preprocessing_path}: no such file; the run standardizes images "
                                        "(image_prep.standardize) and needs its pixel_mean/pixel_std")
            with np.load(run.preprocessing_path) as npz:
                missing = [k for k in ("pixel_mean", "pixel_std") if k not in npz]
                if missing:
                    raise ValueError(f"{run.preprocessing_path}: arrays {missing} missing; expected pixel_mean "
                                     "and pixel_std")
                mean = np.asarray(npz["pixel_mean"], np.float32)
                std = np.asarray(npz["pixel_std"], np.float32)
            if mean.shape != image_spec.shape or std.shape != image_spec.shape:
                raise ValueError(f"{run.preprocessing_path}: pixel_mean/pixel_std have shapes {mean.shape}/"
                                 f"{std.shape}; expected the ImageSpec's {image_spec.shape}")
            std = np.where(std > 0, std, 1.0).astype(np.float32)  # as jettf.data.image_prep
        fields = {f.name for f in dataclasses.fields(ImagePrep)} - {"mean", "std", "densify"}
        prep = ImagePrep(**{k: v for k, v in desc.items() if k in fields}, densify="host", mean=mean, std=std)
        needs_pid = needs_charge(image_spec.channels)
        model_shape = tuple(prep.output_shape)
    else:
        model_shape = (None, 4)
    feature_names = list(config.get("feature_names") or []) if "global_features" in inputs else []
    if "global_features" in inputs and not feature_names:
        raise ValueError(f"{where}: inputs include 'global_features' but 'feature_names' is empty")
    if feature_names and config.get("feature_spec"):
        spec_names = FeatureSpec.from_dict(config["feature_spec"]).names()
        if spec_names != feature_names:
            raise ValueError(f"{where}: feature_names differ from feature_spec.names(); the config is inconsistent")
    in_graph = [n for n in feature_names if n in IN_GRAPH_FEATURES]
    external = [n for n in feature_names if n not in IN_GRAPH_FEATURES]
    metrics = run.read_metrics() if run.metrics_path.exists() else {}
    return _Plan(run.path, config, metrics, kind, image_spec, prep, feature_names, in_graph, external, needs_pid,
                 list(config["class_names"]), model_shape)


# ----------------------------------------------------------------------------- model
def _load_model(plan: _Plan):
    """The run's Keras model taking the dense/primary inputs (a device-densify wrapper is unwrapped)."""
    keras = _require_tensorflow_backend()
    import jettf.models as zoo  # registers the zoo's custom layers
    from jettf.data.layers import SparseImagePrep  # registered on import

    path = plan.run_dir / "model.keras"
    model = keras.models.load_model(path, compile=False)
    if any(isinstance(layer, SparseImagePrep) for layer in model.layers):
        inner = [layer for layer in model.layers if isinstance(layer, keras.Model)
                 and any(sub.name == zoo.OUTPUT_NAME for sub in layer.layers)]
        if len(inner) != 1:
            raise ValueError(f"{path}: a SparseImagePrep-wrapped model should hold exactly one zoo model; "
                             f"found {[m.name for m in inner]}")
        model = inner[0]
    names = {t.name.split(":")[0]: t for t in model.inputs}
    expected = {plan.input_kind} | ({"global_features"} if plan.uses_features else set())
    if set(names) != expected:
        raise ValueError(f"{path}: the model's inputs are {sorted(names)}; config.json's inputs say {sorted(expected)}")
    shape = tuple(names[plan.input_kind].shape[1:])
    if len(shape) != len(plan.model_input_shape) or any(
            a is not None and b is not None and int(a) != int(b) for a, b in zip(shape, plan.model_input_shape)):
        raise ValueError(f"{path}: the model's {plan.input_kind!r} input has shape {shape}; the run's preparation "
                         f"gives {plan.model_input_shape}")
    if plan.input_kind == "constituents":
        plan.model_input_shape = shape
    if plan.uses_features and int(names["global_features"].shape[-1]) != len(plan.feature_names):
        raise ValueError(f"{path}: global_features input has {names['global_features'].shape[-1]} columns; "
                         f"config.json lists {len(plan.feature_names)} feature_names")
    try:
        stored = zoo.model_class_names(model)
    except ValueError:
        stored = None
    if stored is not None and stored != plan.class_names:
        raise ValueError(f"{path}: the model's class names {stored} differ from config.json's {plan.class_names}")
    n_out = int(model.outputs[0].shape[-1])
    if n_out != len(plan.class_names):
        raise ValueError(f"{path}: the model has {n_out} outputs for {len(plan.class_names)} class names")
    return model


# ----------------------------------------------------------------------------- graph
def _tensor_specs(inputs: dict) -> list:
    import tensorflow as tf

    return [tf.TensorSpec([None if d == -1 else d for d in doc["shape"]], getattr(tf, doc["dtype"]), name=name)
            for name, doc in inputs.items()]


def _validate(signature: str, tensors: dict, docs: dict) -> dict:
    """Tensors with in-graph checks attached: rank, fixed dims, batch sizes, finite floats, pt >= 0."""
    import tensorflow as tf

    checks, batch = [], None
    for name, x in tensors.items():
        doc = docs[name]
        want = "(" + ", ".join("N" if i == 0 else ("*" if d == -1 else str(d))
                               for i, d in enumerate(doc["shape"])) + ")"  # no brackets: TF wraps messages in []
        shape = tf.raw_ops.Shape(input=x)  # the raw op: never folded from the placeholder's static shape
        rank_ok = tf.debugging.assert_equal(
            tf.raw_ops.Size(input=shape), len(doc["shape"]),
            message=f"{signature}: input '{name}' must have shape {want} ({doc['dtype']}); got another rank")
        with tf.control_dependencies([rank_ok]):
            for axis, d in enumerate(doc["shape"]):
                if axis and d != -1:
                    checks.append(tf.debugging.assert_equal(
                        shape[axis], d,
                        message=f"{signature}: input '{name}' must have shape {want}; axis {axis} must be {d}"))
            if batch is None:
                batch = (name, shape[0])
            else:
                checks.append(tf.debugging.assert_equal(
                    shape[0], batch[1],
                    message=f"{signature}: inputs '{batch[0]}' and '{name}' must have the same batch size N"))
        if x.dtype.is_floating:
            checks.append(tf.debugging.assert_all_finite(
                x, message=f"{signature}: input '{name}' holds NaN or Inf; every value must be finite"))
        if name == "constituents":
            checks.append(tf.debugging.assert_non_negative(
                x[..., 0], message=f"{signature}: input 'constituents' has pt < 0 (column 0 is pt in GeV; "
                                   "pt = 0 marks padding)"))
    with tf.control_dependencies(checks):
        return {name: tf.identity(x) for name, x in tensors.items()}


def _outputs(probabilities) -> dict:
    import tensorflow as tf

    probabilities = tf.cast(probabilities, tf.float32)
    return {"probabilities": probabilities, "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}


def _named_function(names, body, specs):
    """A tf.function whose arguments are called ``names`` (signature input names follow them)."""
    import inspect

    import tensorflow as tf

    def fn(*args):
        return body(dict(zip(names, args)))

    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return tf.function(fn, input_signature=specs, autograph=False)


def build_functions(plan: _Plan, model) -> dict:
    """``{signature: tf.function}`` for the run's model (see the module docstring)."""
    import tensorflow as tf

    from jettf.data.pipeline import prepare_dense_tf
    from jettf.images import render_tf
    from jettf.images.channels import CHARGED_PIDS

    docs = plan.signature_inputs()
    kind = plan.input_kind

    def call_model(primary, features):
        x = {kind: primary}
        if features is not None:
            x["global_features"] = features
        return model(x, training=False)

    def serve(t):
        t = _validate(SERVING_DEFAULT, t, docs[SERVING_DEFAULT])
        return _outputs(call_model(t[kind], t.get("global_features")))

    def from_constituents(t):
        t = _validate(FROM_CONSTITUENTS, t, docs[FROM_CONSTITUENTS])
        c, jet = t["constituents"], t["jet"]
        pt, eta, phi, energy = tf.unstack(c, num=4, axis=-1)
        if kind == "image":
            charge = None
            if plan.needs_pid:
                pdg = tf.abs(t["pid"])[..., None]
                charge = tf.cast(tf.reduce_any(tf.equal(pdg, tf.constant(CHARGED_PIDS, tf.int32)), -1), tf.float32)
            dense = render_tf(pt, eta, phi, energy, None, jet[:, 1], jet[:, 2], plan.image_spec, charge=charge)
            primary = prepare_dense_tf(dense, plan.prep)
        else:
            primary = _fit_constituents(c, plan.model_input_shape[0])
        features = None
        if plan.uses_features:
            computed = {"jet_pt": jet[:, 0], "jet_eta": jet[:, 1], "jet_phi": jet[:, 2], "jet_mass": jet[:, 3],
                        "n_constituents": tf.reduce_sum(tf.cast(pt > 0, tf.float32), axis=1)}
            ext = {n: i for i, n in enumerate(plan.external)}
            columns = [computed[n] if n in computed else t["substructure_features"][:, ext[n]]
                       for n in plan.feature_names]
            features = tf.stack(columns, axis=1)
        return _outputs(call_model(primary, features))

    functions = {}
    for name, body in ((SERVING_DEFAULT, serve), (FROM_CONSTITUENTS, from_constituents)):
        functions[name] = _named_function(list(docs[name]), body, _tensor_specs(docs[name]))
    return functions


def _fit_constituents(c, m):
    """Constituents for a particle model with a fixed M: the M hardest by pt, zero-padded (as the records)."""
    import tensorflow as tf

    if m is None:
        return c
    order = tf.argsort(c[..., 0], axis=1, direction="DESCENDING", stable=True)
    c = tf.gather(c, order, batch_dims=1)
    return tf.pad(c, [[0, 0], [0, int(m)], [0, 0]])[:, : int(m)]


# ----------------------------------------------------------------------------- metadata
def _metadata(plan: _Plan, model, version: int, name: str) -> dict:
    import importlib.metadata as md

    import keras
    import tensorflow as tf

    from jettf import __version__

    from jettf.features import FeatureSpec

    config, metrics = plan.config, plan.metrics
    docs = plan.signature_inputs()
    test = dict(metrics.get("test") or {})
    try:
        import jettf.models as zoo

        build_record = zoo.model_metadata(model)
    except ValueError:
        build_record = {}
    feature_spec = config.get("feature_spec") if plan.uses_features else None
    return {
        "format": METADATA_FORMAT,
        "name": name,
        "version": version,
        "class_names": plan.class_names,
        "task": config.get("task"),
        "signal_class": config.get("signal") if config.get("task") == "binary" else None,
        "model": {
            "architecture": config["model"],
            "options": config.get("model_options") or {},
            "build": build_record,
            "input_kind": plan.input_kind,
            "params": int(model.count_params()),
            "trained_with_backend": (config.get("accelerator") or {}).get("backend"),
            "trained_densify": (config.get("image_prep") or {}).get("densify"),
        },
        "image_spec": plan.image_spec.to_dict() if plan.image_spec is not None else None,
        "image_spec_fingerprint": plan.image_spec.fingerprint() if plan.image_spec is not None else None,
        "image_prep": None if plan.prep is None else {
            **plan.prep.describe(), "densify": "served dense (image input)", "flips": "none at inference",
            "standardization": (f"(x - pixel_mean) / pixel_std per pixel, training split; arrays in "
                                f"assets/{PREPROCESSING_FILE} and in the graph") if plan.prep.standardize else None},
        "feature_spec": feature_spec,
        "feature_spec_fingerprint": FeatureSpec.from_dict(feature_spec).fingerprint() if feature_spec else None,
        "feature_names": plan.feature_names,
        "features_computed_in_graph": list(plan.in_graph),
        "features_as_input": plan.external,
        "dataset": config.get("dataset"),
        "dataset_fingerprint": config.get("dataset_fingerprint"),
        "metrics": {
            "test": test,
            "folds_summary": metrics.get("folds_summary") or {},
            "params": metrics.get("params"),
            "inference_ms_per_100_jets": metrics.get("inference_ms_per_100_jets"),
        },
        "signatures": {sig: {"inputs": docs[sig], "outputs": OUTPUTS} for sig in SIGNATURES},
        "export": {
            "run_dir": str(plan.run_dir.resolve()),
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "jettf": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tensorflow_serving_api": _version(md, "tensorflow-serving-api"),
            "training_versions": config.get("versions") or {},
        },
    }


def _version(md, package):
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _fmt_shape(shape) -> str:
    return "[" + ", ".join("N" if i == 0 else ("M" if d == -1 else str(d)) for i, d in enumerate(shape)) + "]"


def _model_card(meta: dict) -> str:
    """model_card.md: what the model is, its inputs and outputs, and how to query it."""
    name, version = meta["name"], meta["version"]
    test = meta["metrics"]["test"]
    lines = [
        f"# {name} (version {version})",
        "",
        f"jettf `{meta['model']['architecture']}` jet tagger, {meta['task']} task, classes "
        + ", ".join(f"{i} = `{c}`" for i, c in enumerate(meta["class_names"]))
        + (f" (signal: `{meta['signal_class']}`)" if meta.get("signal_class") else "") + ".",
        f"Trained on `{meta['dataset']}` (dataset fingerprint `{meta['dataset_fingerprint']}`) with the "
        f"{meta['model']['trained_with_backend']} backend; {meta['model']['params']:,} parameters.",
        "",
        "## Metrics (test split of the training run)",
        "",
    ]
    rows = [(k, test[k]) for k in ("accuracy", "auc", "auc_mean", "max_sic", "inverse_fpr_at_tpr_0.7", "n_jets")
            if isinstance(test.get(k), (int, float))]
    if rows:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4g} |" for k, v in rows]
    else:
        lines.append("(no metrics.json in the run directory)")
    lines += ["", "## Signatures", "",
              "Both return `probabilities` float32 `[N, n_classes]` (softmax, columns in class order) and "
              "`class_ids` int64 `[N]` (argmax). N (and M) are free.", "",
              "| signature | input | dtype | shape | meaning |", "|---|---|---|---|---|"]
    for sig, body in meta["signatures"].items():
        for input_name, doc in body["inputs"].items():
            lines.append(f"| `{sig}` | `{input_name}` | {doc['dtype']} | `{_fmt_shape(doc['shape'])}` | "
                         f"{doc['doc']} |")
    if meta["features_as_input"]:
        lines += ["", "### `substructure_features` columns (from_constituents)", "",
                  "These global features need fastjet-contrib (N-subjettiness, ECF series, EFPs) and cannot be "
                  "computed in the graph: compute them with `jettf.features.compute_features(batch, "
                  "FeatureSpec.from_dict(feature_spec))` and send these columns, in this order:", "",
                  ", ".join(f"`{n}`" for n in meta["features_as_input"])]
    if meta["features_computed_in_graph"]:
        lines += ["", "Computed in the graph from `jet` and `constituents`: "
                  + ", ".join(f"`{n}` ({IN_GRAPH_FEATURES[n]})" for n in meta["features_computed_in_graph"]) + "."]
    if meta["image_spec"] is not None:
        spec, prep = meta["image_spec"], meta["image_prep"]
        lines += ["", "## Image", "",
                  f"ImageSpec (fingerprint `{meta['image_spec_fingerprint']}`): `{json.dumps(spec, sort_keys=True)}`.",
                  f"Preparation (`serving_default` expects it done, `from_constituents` does it): standardize="
                  f"{prep['standardize']}, crop={prep['crop']}, to_rgb={prep['to_rgb']}, resize={prep['resize']}; "
                  "no flips. `from_constituents` renders from *all* the constituents sent (training images used "
                  "every constituent of the jet), pt = 0 rows are padding."]
    first = next(iter(meta["signatures"][FROM_CONSTITUENTS]["inputs"]))
    lines += [
        "", "## Query it", "",
        "Serve the model base directory (the parent of this version) with TensorFlow Serving:", "",
        "```bash",
        "docker run --rm -p 8500:8500 -p 8501:8501 \\",
        f"  --mount type=bind,source=$PWD/saved_models/{name},target=/models/{name} \\",
        f"  -e MODEL_NAME={name} -t tensorflow/serving",
        "```", "",
        "REST (`POST http://localhost:8501/v1/models/" + name + ":predict`), raw jets:", "",
        "```python",
        "import json, urllib.request",
        "from jettf.serving import make_rest_request",
        f"body = make_rest_request(\"{FROM_CONSTITUENTS}\", {{\"constituents\": constituents, \"jet\": jet"
        + (", \"substructure_features\": sub" if meta["features_as_input"] else "")
        + (", \"pid\": pid" if "pid" in meta["signatures"][FROM_CONSTITUENTS]["inputs"] else "") + "})",
        f"req = urllib.request.Request(\"http://localhost:8501/v1/models/{name}:predict\", "
        "json.dumps(body).encode(), {\"Content-Type\": \"application/json\"})",
        "print(json.load(urllib.request.urlopen(req))[\"predictions\"])",
        "```", "",
        f"The JSON is `{{\"signature_name\": \"{FROM_CONSTITUENTS}\", "
        f"\"instances\": [{{\"{first}\": ..., ...}}, ...]}}` "
        "(row form) or `{\"signature_name\": ..., \"inputs\": {\"constituents\": [...], ...}}` (columnar form).",
        "", "gRPC (port 8500, `pip install tensorflow-serving-api`):", "",
        "```python",
        "import grpc",
        "from tensorflow_serving.apis import prediction_service_pb2_grpc",
        "from jettf.serving import make_predict_request",
        f"request = make_predict_request(\"{name}\", \"{SERVING_DEFAULT}\", {{\"image\": images}})"
        if meta["image_spec"] is not None else
        f"request = make_predict_request(\"{name}\", \"{SERVING_DEFAULT}\", {{\"constituents\": constituents}})",
        "stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(\"localhost:8500\"))",
        "response = stub.Predict(request, 10.0)",
        "```", "",
        "Without a server: `jettf.serving.ServedModel(\"saved_models/" + f"{name}/{version}\").rest(body)` answers "
        "the same requests through the SavedModel. Inspect the signatures with "
        f"`saved_model_cli show --dir saved_models/{name}/{version} --all`.",
        "",
        f"Machine-readable metadata: `assets/{METADATA_FILE}`.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- export
def _next_version(base: Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.exists() else []
    return max(versions, default=0) + 1


def export_run(run_dir, out=None, version: Optional[int] = None, log=print) -> Path:
    """Export the run in ``run_dir`` to ``out/VERSION`` and return that directory.

    Args:
        run_dir: a finished ``python -m jettf.train`` run directory.
        out: the model base directory TF-Serving serves (``saved_models/NAME``);
            default ``saved_models/<run directory name>``.
        version: a positive integer; default one more than the highest existing
            version (1 for a new model). An existing version is never overwritten.

    Needs Keras' TensorFlow backend (selected here if Keras is not imported yet).
    """
    from jettf.utils import atomic_path

    _require_tensorflow_backend()  # before anything heavy: fail fast under another backend
    plan = _plan(run_dir)
    base = Path(out) if out is not None else Path("saved_models") / plan.run_dir.resolve().name
    if version is None:
        version = _next_version(base)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or int(version) < 1:
        raise ValueError(f"version must be a positive integer (TF-Serving versions are integers), got {version!r}")
    version = int(version)
    target = base / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists; versions are never overwritten (omit --version to take "
                              f"the next one, {_next_version(base)})")
    import tensorflow as tf

    model = _load_model(plan)
    functions = build_functions(plan, model)
    concrete = {name: fn.get_concrete_function() for name, fn in functions.items()}
    meta = _metadata(plan, model, version, base.resolve().name)

    root = tf.Module()
    for name, fn in functions.items():
        setattr(root, name, fn)
    seen, variables = set(), []
    for fn in concrete.values():
        for v in fn.variables:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    root.model_variables = variables
    with tempfile.TemporaryDirectory() as scratch:
        meta_path = Path(scratch) / METADATA_FILE
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        root.metadata_file = tf.saved_model.Asset(str(meta_path))
        if plan.prep is not None and plan.prep.standardize:
            prep_path = Path(scratch) / PREPROCESSING_FILE
            np.savez(prep_path, pixel_mean=plan.prep.mean, pixel_std=plan.prep.std)
            root.preprocessing_file = tf.saved_model.Asset(str(prep_path))
        with atomic_path(target, overwrite=False) as tmp:
            tf.saved_model.save(root, str(tmp), signatures=concrete)
            (tmp / MODEL_CARD_FILE).write_text(_model_card(meta))
    log(f"exported {plan.run_dir} -> {target} (signatures: {', '.join(SIGNATURES)})")
    return target


# ----------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(
        prog="python -m jettf.export",
        description="Export a jettf training run as a TF-Serving SavedModel (MODEL/VERSION/ layout) with the "
                    "signatures serving_default and from_constituents, metadata and a model card.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished `python -m jettf.train` run directory")
    p.add_argument("--out", type=Path, help="model base directory (default: saved_models/<RUN_DIR name>)")
    p.add_argument("--version", type=int, help="integer version (default: next free; never overwrites)")
    args = p.parse_args(argv)
    if "keras" not in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        print(f"jettf.export: KERAS_BACKEND={os.environ['KERAS_BACKEND']} ignored; SavedModels are written with "
              "the TensorFlow backend (model.keras is backend-independent)", file=sys.stderr)
    try:
        target = export_run(args.run_dir, args.out, args.version, log=lambda m: print(m, file=sys.stderr))
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as err:
        print(f"jettf.export: error: {err}", file=sys.stderr)
        return 2
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
