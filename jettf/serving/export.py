"""Export a training run as a TF-Serving SavedModel: ``python -m jettf.export RUN_DIR``.

Layout (TF-Serving's: a model base directory holding integer versions)::

    saved_models/NAME/
      1/                       one export; a new export gets the next integer
        saved_model.pb         graph with the signatures below
        variables/             the trained weights
        assets/jettf_model.json  machine-readable metadata (class names, specs, signatures, metrics)
        model_card.md          the same for people, with how to query it
        fingerprint.pb

A version directory is written under a temporary name and renamed when
complete, so TF-Serving (which polls the base directory) never sees half an
export, and an existing version is never overwritten.

Signatures (outputs of both: ``probabilities`` float32 ``[N, n_classes]``, the
softmax in :attr:`class_names` order, and ``class_ids`` int64 ``[N]``, its argmax):

``serving_default``
    the bare model (``model.keras``, the tagger): ``image`` float32 ``[N, npix, npix, C]``
    as rendered with the run's ImageSpec (physical units, e.g. pt in GeV or pT_rel; no
    standardization: the model's first layer, :class:`jettf.images.ImagePreparation`,
    standardizes, crops and resizes it), plus ``global_features`` float32 ``[N, F]`` (raw
    values; the model standardizes them) when the model fuses global features. Particle
    models (``pfn``, ``efn``) take ``constituents`` ``[N, M, 4]`` here.

``from_constituents``
    the raw jet: ``constituents`` float32 ``[N, M, 4]`` (pt [GeV], eta, phi [rad],
    energy [GeV]; zero-padded, a row with pt = 0 is padding; send *all* of the
    jet's constituents, as the training images were rendered from all of them)
    and ``jet`` float32 ``[N, 4]`` (pt [GeV], eta, phi [rad], mass [GeV]; constituents
    are taken relative to the jet axis, then centred as the ImageSpec says). The graph
    renders the image with :func:`jettf.images.render_tf` and the ImageSpec the model
    carries, and calls the model: ``render_tf -> model``, nothing rebuilt from the run's
    configuration. Channels that need charges (``charged_pt``, ...) or the generator-level
    EM/hadron split (``em``, ``had``) add ``pid`` int32 ``[N, M]`` (PDG ids); detector
    channels (``tracks``, ``ecal``, ``hcal``) add ``subdetector`` int32 ``[N, M]``
    (:data:`jettf.jets.TRACK`, ``ECAL``, ``HCAL`` tags, as ``JetBatch.subdetector``).
    Of the global features, the jet kinematics and
    ``n_constituents`` are computed in the graph; the substructure observables
    (N-subjettiness, ECF series, EFPs) need fastjet-contrib, so the signature takes
    those -- and only those -- as ``substructure_features`` float32 ``[N, F_sub]``,
    in the column order listed in the metadata and the model card.

Every signature checks its inputs in the graph (rank, fixed dimensions, equal
batch sizes, finite values, pt >= 0; from_constituents also a jet pt > 0 and at least one
constituent per jet) and fails with a message naming the input (and, for the physical
checks, the batch indices of the offending jets), never with a silently wrong answer.
To try a request without a server, call a signature of the loaded SavedModel:
``tf.saved_model.load(DIR).signatures["from_constituents"](constituents=..., jet=...)``.

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

__all__ = ["export_run", "main", "METADATA_FILE", "MODEL_CARD_FILE", "SIGNATURES",
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
    """What an export of one run contains: read from the tagger itself (no TensorFlow objects but the model)."""

    run_dir: Path
    config: dict  # config.json: {"config": TrainConfig values, "resolved": ...}, for the model card only
    metrics: dict
    model: object  # the tagger (model.keras)
    input_kind: str  # "image" or "constituents"
    preparation: object  # the tagger's ImagePreparation layer, or None
    feature_names: list
    in_graph: list  # features computed in from_constituents
    external: list  # features from_constituents takes as substructure_features
    needs_pid: bool  # charged channels, or em/had from PDG ids
    needs_subdetector: bool  # detector channels (tracks, ecal, hcal)
    class_names: list
    model_input_shape: tuple  # non-batch shape of the primary model input (dims may be None)
    extra_images: dict = dataclasses.field(default_factory=dict)  # second image name -> its ImagePreparation
    signatures: tuple = SIGNATURES  # from_constituents only where the images were rendered from constituents

    @property
    def image_spec(self):
        return None if self.preparation is None else self.preparation.image_spec

    @property
    def uses_features(self) -> bool:
        return bool(self.feature_names)

    def signature_inputs(self) -> dict:
        """``{signature: {input: {"dtype", "shape" (-1 = any), "doc", ["columns"]}}}`` in argument order."""
        kind, shape = self.input_kind, [-1] + [(-1 if d is None else int(d)) for d in self.model_input_shape]
        serve = {}
        if kind == "image":
            spec = self.image_spec
            units = ", ".join(f"{c} [{u}]" for c, u in zip(spec.channels, spec.channel_units()))
            serve["image"] = {"dtype": "float32", "shape": shape,
                              "doc": f"the jet image as rendered with the ImageSpec ({units}; axis 1 = eta, axis 2 = "
                                     "phi), before any standardization: the model prepares it itself",
                              "columns": list(spec.channels)}
        else:
            serve["constituents"] = {"dtype": "float32", "shape": shape,
                                     "doc": "constituents (pt [GeV], eta, phi [rad], energy [GeV]), zero-padded",
                                     "columns": ["pt", "eta", "phi", "energy"]}
        for name, prep in self.extra_images.items():
            spec = prep.image_spec
            units = ", ".join(f"{c} [{u}]" for c, u in zip(spec.channels, spec.channel_units()))
            serve[name] = {"dtype": "float32", "shape": [-1, *prep.input_shape_dense],
                           "doc": f"the second image '{name}' at its own granularity ({units}; axis 1 = eta, axis 2 "
                                  "= phi), as stored in the dataset: the model prepares it itself",
                           "columns": list(spec.channels)}
        if self.uses_features:
            serve["global_features"] = {"dtype": "float32", "shape": [-1, len(self.feature_names)],
                                        "doc": "raw (unstandardized) global jet features, as "
                                               "jettf.features.compute_features gives them with the metadata's "
                                               "feature_spec, in feature_names order",
                                        "columns": list(self.feature_names)}
        axis = "jet pt [GeV] (> 0), eta, phi [rad], mass [GeV]"
        if kind == "image":
            centre = {None: "the image is centred on the jet's (eta, phi)",
                      "pt_centroid": "constituents are taken relative to (eta, phi), then centred on their pt "
                                     "centroid",
                      "hardest": "constituents are taken relative to (eta, phi), then centred on the hardest one",
                      "leading_subjet": "constituents are taken relative to (eta, phi), then centred on the "
                                        "leading kT subjet"}[self.image_spec.center]
            axis += "; " + centre
        raw = {
            "constituents": {"dtype": "float32", "shape": [-1, -1, 4], "columns": ["pt", "eta", "phi", "energy"],
                             "doc": "all constituents of each jet: pt [GeV], eta, phi [rad], energy [GeV]; "
                                    "zero-padded (pt = 0 marks padding); any M; at least one per jet"},
            "jet": {"dtype": "float32", "shape": [-1, 4], "columns": ["pt", "eta", "phi", "mass"], "doc": axis},
        }
        if self.needs_pid:
            raw["pid"] = {"dtype": "int32", "shape": [-1, -1],
                          "doc": "PDG id of each constituent, like constituents[..., 0] (0 for padding): charged "
                                 "channels use |pid| in jettf.images.channels.CHARGED_PIDS, em/had the "
                                 "generator-level split of jettf.jets.generator_split"}
        if self.needs_subdetector:
            raw["subdetector"] = {"dtype": "int32", "shape": [-1, -1],
                                  "doc": "subdetector tag of each constituent, like constituents[..., 0], as "
                                         "JetBatch.subdetector: 1 = track, 2 = ECAL, 3 = HCAL (0 for padding)"}
        if self.external:
            raw["substructure_features"] = {
                "dtype": "float32", "shape": [-1, len(self.external)], "columns": list(self.external),
                "doc": "global features the graph cannot compute (fastjet-contrib N-subjettiness, ECFs, EFPs), "
                       "raw values from jettf.features.compute_features with the FeatureSpec, in this order"}
        return {name: body for name, body in ((SERVING_DEFAULT, serve), (FROM_CONSTITUENTS, raw))
                if name in self.signatures}


def _plan(run_dir) -> _Plan:
    """Everything an export needs, from the run's ``model.keras`` (the tagger carries its preparation)."""
    import jettf.models as zoo
    from jettf.images.channels import CHANNELS, needs_charge
    from jettf.training import load_tagger
    from jettf.training.run_dir import RunDir

    run = RunDir(run_dir)
    config = run.read_config()
    seed_dirs = config["resolved"].get("seed_dirs")
    if seed_dirs:
        raise ValueError(f"{run.path}: a multi-seed run (seed_dirs {seed_dirs}); export one seed's "
                         f"directory, e.g. {run.path / seed_dirs[0]}")
    _require_tensorflow_backend()
    model = load_tagger(run.path)
    inputs = {t.name.split(":")[0]: t for t in model.inputs}
    kind = "image" if "image" in inputs else "constituents"
    if kind not in inputs:
        raise ValueError(f"{run.model_path}: the model's inputs are {sorted(inputs)}; expected 'image' or "
                         "'constituents' (not a jettf tagger)")
    preparation = None
    if kind == "image":
        try:
            preparation = zoo.find_layer(model, "image_preparation")
        except ValueError:
            raise ValueError(f"{run.model_path}: an image model without an ImagePreparation layer; it cannot "
                             "render its own input from constituents (train it with jettf.train)") from None
    feature_names = []
    if "global_features" in inputs:
        feature_names = list(zoo.model_metadata(model).get("feature_names") or [])
        if len(feature_names) != int(inputs["global_features"].shape[-1]):
            raise ValueError(f"{run.model_path}: the model takes {inputs['global_features'].shape[-1]} global "
                             f"features but names {len(feature_names)}")
    class_names = zoo.model_class_names(model)
    expected = config["resolved"].get("class_names")
    if expected and expected != class_names:
        raise ValueError(f"{run.model_path}: the model's class names {class_names} differ from config.json's "
                         f"{expected}")
    in_graph = [n for n in feature_names if n in IN_GRAPH_FEATURES]
    external = [n for n in feature_names if n not in IN_GRAPH_FEATURES]
    metrics = run.read_metrics() if run.metrics_path.exists() else {}
    channels = () if preparation is None else preparation.image_spec.channels
    tags = {CHANNELS[c].needs_subdetector for c in channels} - {None}
    needs_subdetector = "detector" in tags  # detector-level tags serve every subdetector channel, as in render()
    extra_images = {name: zoo.find_layer(model, f"{name}_preparation") for name in inputs
                    if name not in (kind, "global_features")}
    # Images stored as the source files hold them (004's calorimeter windows, second images) cannot be rendered
    # from a list of constituents the same way: those models serve their images only.
    as_read = extra_images or config["resolved"].get("images_as_read")
    return _Plan(run.path, config, metrics, model, kind, preparation, feature_names, in_graph, external,
                 needs_charge(channels) or (bool(tags) and not needs_subdetector), needs_subdetector, class_names,
                 tuple(inputs[kind].shape[1:]), extra_images,
                 (SERVING_DEFAULT,) if as_read and kind == "image" else SIGNATURES)


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


def _assert_every(ok, message: str):
    """An assertion that ``ok`` ``[N]`` holds for every jet; its error lists the failing batch indices."""
    import tensorflow as tf

    bad = tf.reshape(tf.where(tf.logical_not(ok)), [-1])
    return tf.debugging.Assert(tf.reduce_all(ok), [message, bad], summarize=20)


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


def build_functions(plan: _Plan) -> dict:
    """``{signature: tf.function}`` for the run's tagger (see the module docstring)."""
    import tensorflow as tf

    from jettf.images import render_tf
    from jettf.images.channels import CHARGED_PIDS
    from jettf.jets import GEN_EM, GEN_HAD

    docs = plan.signature_inputs()
    kind, model = plan.input_kind, plan.model

    def call_model(primary, features, extra=None):
        x = {kind: primary, **(extra or {})}
        if features is not None:
            x["global_features"] = features
        return model(x, training=False)

    def serve(t):
        t = _validate(SERVING_DEFAULT, t, docs[SERVING_DEFAULT])
        return _outputs(call_model(t[kind], t.get("global_features"), {n: t[n] for n in plan.extra_images}))

    def from_constituents(t):
        t = _validate(FROM_CONSTITUENTS, t, docs[FROM_CONSTITUENTS])
        c, jet = t["constituents"], t["jet"]
        pt, eta, phi, energy = tf.unstack(c, num=4, axis=-1)
        physical = [_assert_every(jet[:, 0] > 0, f"{FROM_CONSTITUENTS}: input 'jet' has a jet pt <= 0 (column 0 is "
                                                 "the jet pt in GeV and must be > 0) at batch indices"),
                    _assert_every(tf.reduce_any(pt > 0, axis=1),
                                  f"{FROM_CONSTITUENTS}: input 'constituents' has a jet without constituents (every "
                                  "row has pt = 0; send at least one per jet) at batch indices")]
        with tf.control_dependencies(physical):
            pt = tf.identity(pt)
        if kind == "image":
            charge = subdetector = None
            if plan.needs_pid:  # as jettf.images.channels.constituent_charge and jettf.jets.generator_split
                pdg = tf.abs(t["pid"])
                charge = tf.cast(tf.reduce_any(tf.equal(pdg[..., None], tf.constant(CHARGED_PIDS, tf.int32)), -1),
                                 tf.float32)
                subdetector = tf.where((pdg == 11) | (pdg == 22), GEN_EM, tf.where(pdg >= 100, GEN_HAD, 0))
            if plan.needs_subdetector:
                subdetector = t["subdetector"]
            primary = render_tf(pt, eta, phi, energy, None, jet[:, 1], jet[:, 2], plan.image_spec, charge=charge,
                                subdetector=subdetector)
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
        if name not in plan.signatures:
            continue
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
def _metadata(plan: _Plan, version: int, name: str) -> dict:
    import importlib.metadata as md

    import keras
    import tensorflow as tf

    import jettf.models as zoo
    from jettf import __version__
    from jettf.features import FeatureSpec

    settings, resolved, metrics = plan.config["config"], plan.config["resolved"], plan.metrics
    docs = plan.signature_inputs()
    test = dict(metrics.get("test") or {})
    build = zoo.model_metadata(plan.model)
    feature_spec = resolved.get("feature_spec") if plan.uses_features else None
    return {
        "format": METADATA_FORMAT,
        "name": name,
        "version": version,
        "class_names": plan.class_names,
        "task": settings.get("task"),
        "signal_class": settings.get("signal") if settings.get("task") == "binary" else None,
        "model": {
            "architecture": settings.get("model"),
            "options": settings.get("model_options") or {},
            "build": build,
            "input_kind": plan.input_kind,
            "params": zoo.count_params(plan.model),
            "trained_with_backend": (resolved.get("accelerator") or {}).get("backend"),
            "trained_densify": resolved.get("densify"),  # where training densified its sparse images
        },
        "image_spec": plan.image_spec.to_dict() if plan.image_spec is not None else None,
        "image_spec_fingerprint": plan.image_spec.fingerprint() if plan.image_spec is not None else None,
        "extra_images": {name: prep.image_spec.to_dict() for name, prep in plan.extra_images.items()},
        "preparation": None if plan.preparation is None else {
            **{k: v for k, v in plan.preparation.describe().items() if k != "densify"},  # serving sends dense images
            "training_flips": list(build.get("flips") or []),
            "where": "the model's first layer (ImagePreparation): serving_default takes the image as rendered"},
        "feature_spec": feature_spec,
        "feature_spec_fingerprint": FeatureSpec.from_dict(feature_spec).fingerprint() if feature_spec else None,
        "feature_names": plan.feature_names,
        "features_computed_in_graph": list(plan.in_graph),
        "features_as_input": plan.external,
        "dataset": resolved.get("dataset"),
        "dataset_fingerprint": resolved.get("dataset_fingerprint"),
        "metrics": {
            "test": test,
            "folds_summary": metrics.get("folds_summary") or {},
            "params": metrics.get("params"),
            "inference_ms_per_100_jets": metrics.get("inference_ms_per_100_jets"),
        },
        "signatures": {sig: {"inputs": docs[sig], "outputs": OUTPUTS} for sig in plan.signatures},
        "export": {
            "run_dir": str(plan.run_dir.resolve()),
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "jettf": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tensorflow_serving_api": _version(md, "tensorflow-serving-api"),
            "training_versions": resolved.get("versions") or {},
        },
    }


def _version(md, package):
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _fmt_shape(shape) -> str:
    return "[" + ", ".join("N" if i == 0 else ("M" if d == -1 else str(d)) for i, d in enumerate(shape)) + "]"


def _model_card(meta: dict, base: Path) -> str:
    """model_card.md: what the model is, its inputs and outputs, and how to query it (``base``: the model's
    base directory, whose path the commands use)."""
    name, version = meta["name"], meta["version"]
    base = Path(base).resolve()
    here = base / str(version)
    test, sigs = meta["metrics"]["test"], meta["signatures"]
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
              "Every signature returns `probabilities` float32 `[N, n_classes]` (softmax, columns in class order) and "
              "`class_ids` int64 `[N]` (argmax). N (and M) are free.", "",
              "| signature | input | dtype | shape | meaning |", "|---|---|---|---|---|"]
    for sig, body in sigs.items():
        for input_name, doc in body["inputs"].items():
            lines.append(f"| `{sig}` | `{input_name}` | {doc['dtype']} | `{_fmt_shape(doc['shape'])}` | "
                         f"{doc['doc']} |")
    renders = FROM_CONSTITUENTS in sigs
    if not renders:
        lines += ["", f"No `{FROM_CONSTITUENTS}` signature: the training images were stored as the source files hold "
                  "them (calorimeter windows at their own granularity), which a list of constituents does not "
                  "reproduce; send the images themselves."]
    if meta["features_computed_in_graph"] and renders:
        lines += ["", f"`{FROM_CONSTITUENTS}` computes these global features in the graph: "
                  + ", ".join(f"`{n}` ({IN_GRAPH_FEATURES[n]})" for n in meta["features_computed_in_graph"]) + "."]
    if meta["features_as_input"] and renders:
        lines += ["", "### `substructure_features` (from_constituents)", "",
                  "These global features need fastjet-contrib (N-subjettiness, ECF series, EFPs) and cannot be "
                  "computed in the graph. Compute them from the same jets (a `jettf.jets.JetBatch`) with the "
                  "model's FeatureSpec and send these columns, in this order: "
                  + ", ".join(f"`{n}`" for n in meta["features_as_input"]) + ".", "",
                  "```python",
                  "from jettf.features import FeatureSpec, compute_features",
                  "from jettf.serving import read_metadata",
                  f"meta = read_metadata(\"{here}\")",
                  "values, names = compute_features(batch, FeatureSpec.from_dict(meta[\"feature_spec\"]))",
                  "sub = values[:, [names.index(n) for n in meta[\"features_as_input\"]]]",
                  "```"]
    if meta["image_spec"] is not None:
        spec, prep = meta["image_spec"], meta["preparation"]
        units = ", ".join(f"`{c}`" for c in spec["channels"])
        centre = {None: "the jet axis", "pt_centroid": "the pt centroid", "hardest": "the hardest constituent",
                  "leading_subjet": "the leading kT subjet"}[spec["center"]]
        shape_in, shape_out = prep["input_shape"], prep["output_shape"]
        steps = [f"per-pixel standardization with the training split's mean and standard deviation (the divisor is "
                 f"at least {prep['std_floor']:g} x the channel's largest pixel std)" if prep["standardize"] else None,
                 f"centre crop {shape_in[0]}x{shape_in[1]} -> {prep['crop']}x{prep['crop']} pixels "
                 f"(|eta|, |phi| < {prep['window']:.3g})" if prep["crop"] not in (None, shape_in[0]) else None,
                 f"`{prep['colormap']}` colormap: the one channel becomes RGB (min-max per image)"
                 if prep["colormap"] else None,
                 f"bilinear resize to {prep['resize']}x{prep['resize']}" if prep["resize"] else None]
        steps = [s for s in steps if s] or ["none: the image goes to the network as rendered"]
        flips = prep.get("training_flips") or []
        lines += ["", "## Image", "",
                  (f"`{FROM_CONSTITUENTS}` renders, and `{SERVING_DEFAULT}` takes, " if renders else
                   f"`{SERVING_DEFAULT}` takes ") + f"{spec['npix']}x{spec['npix']} "
                  f"images of {units} over |eta|, |phi| < {spec['extent']:g} around {centre}"
                  + (f", rotated ({spec['rotate']})" if spec.get("rotate") else "")
                  + (", flipped so the harder half has phi > 0" if spec.get("flip") else "")
                  + (f", {spec['normalize']}-normalized" if spec.get("normalize") else "")
                  + " (ImageSpec fingerprint "
                  f"`{meta['image_spec_fingerprint']}`; the full spec is in the metadata), in the spec's units (see "
                  "`image` above), before any standardization. The model prepares the image itself, in its first layer "
                  "(ImagePreparation), so nothing needs to be applied by the client:", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(steps, 1)]
        lines += ["", f"giving the network a {'x'.join(str(d) for d in shape_out)} input."
                  + (f" Random flips along {' and '.join(flips)} were applied in training only." if flips else "")]
        if renders:
            lines.append(f"`{FROM_CONSTITUENTS}` renders from *all* the constituents sent (the training images used "
                         "every constituent of the jet); pt = 0 rows are padding.")
        for name, extra in (meta.get("extra_images") or {}).items():
            lines += ["", f"The second image `{name}`: {extra['npix']}x{extra['npix']} pixels of "
                      + ", ".join(f"`{c}`" for c in extra["channels"]) + f" over |eta|, |phi| < {extra['extent']:g}, "
                      "at its own granularity (not resampled); the model prepares it too."]

    def call(sig, values):
        return ", ".join(f"\"{n}\": {values.get(n, n)}" for n in sigs[sig]["inputs"])

    raw_values = {"substructure_features": "sub"}
    served_values = {"image": "images", "global_features": "features"}
    rest_sig, rest_values = (FROM_CONSTITUENTS, raw_values) if renders else (SERVING_DEFAULT, served_values)
    lines += [
        "", "## Query it", "",
        "Serve the model base directory (the parent of this version) with TensorFlow Serving:", "",
        "```bash",
        "docker run --rm -p 8500:8500 -p 8501:8501 \\",
        f"  --mount type=bind,source={base},target=/models/{name} \\",
        f"  -e MODEL_NAME={name} -t tensorflow/serving",
        "```", "",
        "REST (`POST http://localhost:8501/v1/models/" + name + ":predict`), "
        + ("raw jets" if renders else "images") + " (numpy arrays as in the table above):", "",
        "```python",
        "import json, urllib.request",
        "from jettf.serving import make_rest_request",
        f"body = make_rest_request(\"{rest_sig}\", {{{call(rest_sig, rest_values)}}})",
        f"req = urllib.request.Request(\"http://localhost:8501/v1/models/{name}:predict\", "
        "json.dumps(body).encode(), {\"Content-Type\": \"application/json\"})",
        "print(json.load(urllib.request.urlopen(req))[\"predictions\"])",
        "```", "",
        f"The JSON is `{{\"signature_name\": \"{rest_sig}\", "
        f"\"instances\": [{{\"{next(iter(sigs[rest_sig]['inputs']))}\": ..., ...}}, ...]}}` "
        "(row form) or `{\"signature_name\": ..., \"inputs\": {\"" + next(iter(sigs[rest_sig]["inputs"]))
        + "\": [...], ...}}` (columnar form).",
        "", "gRPC (port 8500, `pip install tensorflow-serving-api`), rendered images:", "",
        "```python",
        "import grpc",
        "from tensorflow_serving.apis import prediction_service_pb2_grpc",
        "from jettf.serving import make_predict_request",
        f"request = make_predict_request(\"{name}\", \"{SERVING_DEFAULT}\", "
        f"{{{call(SERVING_DEFAULT, served_values)}}})",
        "stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(\"localhost:8500\"))",
        "response = stub.Predict(request, 10.0)",
        "```", "",
        "Without a server, the SavedModel answers the same tensors itself (the same graph, the same input checks):", "",
        "```python",
        "import tensorflow as tf",
        f"signature = tf.saved_model.load(\"{here}\").signatures[\"{rest_sig}\"]",
        "probabilities = signature(" + ", ".join(f"{n}=tf.constant({rest_values.get(n, n)})"
                                                 for n in sigs[rest_sig]["inputs"])
        + ")[\"probabilities\"].numpy()",
        "```", "",
        f"Inspect the signatures with `saved_model_cli show --dir {here} --all`. "
        f"Machine-readable metadata: `assets/{METADATA_FILE}`.",
        "",
    ]
    onnx = meta.get("onnx") or {}
    if onnx:
        lines += ["## ONNX", "",
                  "Files for ONNX Runtime, converted from the signatures above (inputs and outputs keep their names; "
                  "ONNX has no assertion op, so validate inputs before `run`):", ""]
        for signature, result in onnx.items():
            lines.append(f"- `{signature}`: " + (f"`{result['file']}`, inputs {', '.join(result['inputs'])}"
                                                  if "file" in result else f"not converted ({result['error']})"))
        first = next((r["file"] for r in onnx.values() if "file" in r), None)
        if first:
            lines += ["", "```python", "import onnxruntime",
                      f"session = onnxruntime.InferenceSession(\"{here / first}\")",
                      "probabilities, class_ids = session.run([\"probabilities\", \"class_ids\"], {...})", "```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- export
def _next_version(base: Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.exists() else []
    return max(versions, default=0) + 1


def export_run(run_dir, out=None, version: Optional[int] = None, log=print, formats=("savedmodel",)) -> Path:
    """Export the run in ``run_dir`` to ``out/VERSION`` and return that directory.

    Args:
        run_dir: a finished ``python -m jettf.train`` run directory.
        out: the model base directory TF-Serving serves (``saved_models/NAME``);
            default ``saved_models/<run directory name>``.
        version: a positive integer; default one more than the highest existing
            version (1 for a new model). An existing version is never overwritten.
        formats: ``"savedmodel"`` (always written) and optionally ``"onnx"``: each signature
            also as ``<signature>.onnx`` in the same version directory (:mod:`jettf.serving.onnx`).

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

    functions = build_functions(plan)
    concrete = {name: fn.get_concrete_function() for name, fn in functions.items()}
    meta = _metadata(plan, version, base.resolve().name)

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
        with atomic_path(target, overwrite=False) as tmp:
            tf.saved_model.save(root, str(tmp), signatures=concrete)
            if "onnx" in formats:
                from .onnx import convert_signatures

                meta["onnx"] = convert_signatures(tmp, plan.signatures)
                (tmp / "assets" / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            (tmp / MODEL_CARD_FILE).write_text(_model_card(meta, base))
    onnx = [f"{s}.onnx" for s, r in meta.get("onnx", {}).items() if "file" in r]
    log(f"exported {plan.run_dir} -> {target} (signatures: {', '.join(plan.signatures)}"
        + (f"; ONNX: {', '.join(onnx) or 'none'}" if "onnx" in formats else "") + ")")
    return target


# ----------------------------------------------------------------------------- CLI
PROG = "python -m jettf.export"


def _main(argv) -> int:
    p = argparse.ArgumentParser(
        prog=PROG, epilog="--debug: show tracebacks",
        description="Export a jettf training run as a TF-Serving SavedModel (MODEL/VERSION/ layout) with the "
                    "signatures serving_default and from_constituents, metadata and a model card.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished `python -m jettf.train` run directory")
    p.add_argument("--out", type=Path, help="model base directory (default: saved_models/<RUN_DIR name>)")
    p.add_argument("--version", type=int, help="integer version (default: next free; never overwrites)")
    p.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                   help="onnx: also write each signature as <signature>.onnx beside the SavedModel, for ONNX Runtime "
                        "(pip install 'jettf[onnx]')")
    args = p.parse_args(argv)
    formats = ("savedmodel", "onnx") if args.format == "onnx" else ("savedmodel",)
    target = export_run(args.run_dir, args.out, args.version, log=lambda m: print(m, file=sys.stderr), formats=formats)
    print(target)
    return 0


def main(argv=None) -> int:
    from jettf.cli import run_command

    # Before run_command loads TensorFlow, which imports Keras (and so fixes its backend).
    if "keras" not in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        print(f"{PROG}: KERAS_BACKEND={os.environ['KERAS_BACKEND']} ignored; SavedModels are written with "
              "the TensorFlow backend (model.keras is backend-independent)", file=sys.stderr)
        os.environ["KERAS_BACKEND"] = "tensorflow"
    return run_command(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
