"""Serve trained jet taggers with TensorFlow Serving.

* :mod:`jettf.serving.export` (CLI ``python -m jettf.export RUN_DIR``): a run directory
  -> a SavedModel in TF-Serving's ``MODEL/VERSION/`` layout with two signatures,
  ``serving_default`` (the tagger itself: the image as rendered, in physical units) and
  ``from_constituents`` (raw jets, rendered in the graph, then the tagger), plus
  ``assets/jettf_model.json`` and ``model_card.md``.
* :mod:`jettf.serving.client`: build TF-Serving REST (``instances`` / ``inputs``) and gRPC
  (``PredictRequest``) requests from numpy arrays; read an export's metadata.

To check a request without a server, call the SavedModel's signature itself:
``tf.saved_model.load("saved_models/NAME/1").signatures["from_constituents"](constituents=..., jet=...)``.

Importing this package imports neither Keras nor TensorFlow.
"""

from .client import make_predict_request, make_rest_request, read_metadata, signature_specs
from .export import METADATA_FILE, MODEL_CARD_FILE, SIGNATURES, export_run

__all__ = [
    "export_run",
    "METADATA_FILE",
    "MODEL_CARD_FILE",
    "SIGNATURES",
    "read_metadata",
    "signature_specs",
    "make_rest_request",
    "make_predict_request",
]
