"""TF-Serving requests for jettf SavedModels, built from numpy arrays.

TensorFlow Serving answers ``predict`` requests over REST (JSON, port 8501) and gRPC
(``tensorflow.serving.PredictRequest``, port 8500); the signatures and their inputs are listed in the
export's ``assets/jettf_model.json`` (:func:`read_metadata`) and ``model_card.md``.

* REST, row form: ``{"signature_name": "from_constituents", "instances": [{"constituents": [[pt, eta, phi, E],
  ...], "jet": [pt, eta, phi, m]}, ...]}`` (one object per jet). Answered with
  ``{"predictions": [{"probabilities": [...], "class_ids": k}, ...]}``.
* REST, columnar form: ``{"signature_name": ..., "inputs": {"constituents": [...], "jet": [...]}}`` (each input
  batched). Answered with ``{"outputs": {"probabilities": [[...]], "class_ids": [...]}}``.
* gRPC: a ``PredictRequest`` with ``model_spec.signature_name`` and one ``TensorProto`` per input, with the
  signature's exact dtype (float32 for everything but ``pid``, int32). Answered with a ``PredictResponse``.

``signature_name`` defaults to ``serving_default``. The server casts JSON numbers to the input's dtype; all
inputs must have the same batch size. The graph checks shapes, finite values and pt >= 0, and
``from_constituents`` also a jet pt > 0 and at least one constituent per jet: a bad request is answered with
HTTP 400 / ``INVALID_ARGUMENT`` and a message naming the input.

Without a server, the SavedModel answers the same tensors itself::

    import tensorflow as tf
    signature = tf.saved_model.load("saved_models/NAME/1").signatures["from_constituents"]
    signature(constituents=tf.constant(constituents), jet=tf.constant(jet))["probabilities"]

Only numpy is imported at module level; :func:`make_predict_request` imports TensorFlow and needs
``tensorflow-serving-api`` (``pip install "jettf[serving]"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

__all__ = ["read_metadata", "signature_specs", "make_rest_request", "make_predict_request"]


def read_metadata(saved_model_dir) -> dict:
    """The ``assets/jettf_model.json`` of an exported version directory."""
    from .export import METADATA_FILE

    path = Path(saved_model_dir) / "assets" / METADATA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; expected a version directory written by jettf.export "
                                "(saved_models/NAME/VERSION)")
    return json.loads(path.read_text())


def signature_specs(metadata: dict) -> dict:
    """``{signature: {input: {"dtype", "shape"}}}`` (``-1`` = any size) from exported metadata, in argument order."""
    return {sig: {name: {"dtype": d["dtype"], "shape": list(d["shape"])} for name, d in body["inputs"].items()}
            for sig, body in metadata["signatures"].items()}


def make_rest_request(signature: str, inputs: Mapping, columnar: bool = False) -> dict:
    """A REST predict body (JSON-able dict) from batched arrays ``{input: [N, ...]}``.

    A list of per-jet arrays of different lengths (e.g. ``constituents`` ``[M_i, 4]``)
    is zero-padded to the longest. ``columnar`` chooses the ``inputs`` form over
    ``instances``. float32 values survive the JSON round trip exactly.
    """
    batched = {name: _pad_ragged(value) for name, value in inputs.items()}
    if columnar:
        return {"signature_name": signature, "inputs": {n: v.tolist() for n, v in batched.items()}}
    sizes = {n: len(v) for n, v in batched.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"make_rest_request: inputs have different batch sizes {sizes}")
    n = next(iter(sizes.values()))
    lists = {name: v.tolist() for name, v in batched.items()}
    return {"signature_name": signature, "instances": [{name: lists[name][i] for name in lists} for i in range(n)]}


def _pad_ragged(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    rows = [np.asarray(v) for v in value]
    if rows and len({r.shape for r in rows}) > 1:
        if len({r.shape[1:] for r in rows}) > 1 or any(r.ndim == 0 for r in rows):
            raise ValueError("per-example arrays may differ only in their first axis (e.g. constituents [M_i, 4])")
        m = max(r.shape[0] for r in rows)
        rows = [np.concatenate([r, np.zeros((m - r.shape[0], *r.shape[1:]), r.dtype)]) for r in rows]
    return np.stack(rows) if rows else np.asarray(value)


def make_predict_request(model_name: str, signature: str, inputs: Mapping, version: Optional[int] = None):
    """A ``tensorflow.serving.PredictRequest`` from batched numpy arrays (dtypes kept as given)."""
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError:
        raise ImportError("make_predict_request needs `pip install tensorflow-serving-api` (same version as "
                          "tensorflow)") from None
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(_pad_ragged(value)))
    return request
