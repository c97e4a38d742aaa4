"""Serve trained jet taggers with TensorFlow Serving.

* :mod:`jettf.serving.export` (CLI ``python -m jettf.export RUN_DIR``): a run directory
  -> a SavedModel in TF-Serving's ``MODEL/VERSION/`` layout with two signatures,
  ``serving_default`` (the model's prepared inputs) and ``from_constituents`` (raw
  jets, rendered and prepared in the graph), plus ``assets/jettf_model.json`` and
  ``model_card.md``.
* :mod:`jettf.serving.client`: build TF-Serving REST (``instances`` / ``inputs``) and
  gRPC (``PredictRequest``) requests, turn them into validated tensors, and answer
  them through a loaded SavedModel (:class:`ServedModel`) exactly as the server
  would -- for tests and for serving without the server binary.

Importing this package imports neither Keras nor TensorFlow.
"""

from .client import RequestError, ServedModel, make_predict_request, make_rest_request, parse_predict_request, \
    parse_rest_request, read_metadata
from .export import METADATA_FILE, MODEL_CARD_FILE, SIGNATURES, export_run

__all__ = [
    "export_run",
    "METADATA_FILE",
    "MODEL_CARD_FILE",
    "SIGNATURES",
    "ServedModel",
    "RequestError",
    "read_metadata",
    "parse_rest_request",
    "parse_predict_request",
    "make_rest_request",
    "make_predict_request",
]
