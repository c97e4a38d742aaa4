"""A local stand-in for TensorFlow Serving, for the export tests (not part of jettf).

TF-Serving's model server is a C++ binary that the tests cannot start; this module answers the same
``predict`` requests through ``tf.saved_model.load`` with the checks the server applies before the graph
runs, so the tests can send what a client sends (REST JSON text in row and columnar form, wire-format
gRPC ``PredictRequest`` protos) and see what it gets back:

* :func:`parse_rest_request` / :func:`parse_predict_request`: a request -> the signature's named numpy
  tensors, refusing what the server refuses (unknown keys or signatures, missing or extra inputs, JSON
  strings, booleans or ragged lists, wrong gRPC dtypes, wrong shapes, unequal batch sizes, NaN/Inf).
* :class:`ServedModel`: a SavedModel version directory answering ``predict`` / ``rest`` / ``grpc``; the
  graph's own checks (pt >= 0, jet pt > 0, at least one constituent) surface as :class:`RequestError`
  carrying the signature's message, as the server's HTTP 400 / ``INVALID_ARGUMENT`` does.

Users check a request without a server with the SavedModel itself
(``tf.saved_model.load(DIR).signatures[NAME](**tensors)``); the request builders they need are
:func:`jettf.serving.make_rest_request` and :func:`jettf.serving.make_predict_request`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from jettf.serving import read_metadata, signature_specs

DEFAULT_SIGNATURE = "serving_default"
_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64}


class RequestError(ValueError):
    """A request the server refuses (REST: HTTP 400 ``{"error": ...}``; gRPC: ``INVALID_ARGUMENT``)."""


# ----------------------------------------------------------------------------- checks
def _fmt(shape) -> str:
    return "[" + ", ".join("N" if i == 0 else ("*" if d == -1 else str(d)) for i, d in enumerate(shape)) + "]"


def _signature(signature, specs: Mapping) -> dict:
    if not isinstance(signature, str) or signature not in specs:
        raise RequestError(f"signature_name {signature!r} not found; the model has {sorted(specs)}")
    return specs[signature]


def _from_json(value, signature: str, name: str, spec: dict) -> np.ndarray:
    """A JSON value as an array of the input's dtype, refusing what is not a (rectangular) number array."""
    try:
        raw = np.asarray(value)
    except ValueError:  # numpy >= 1.24 refuses ragged nesting
        raw = None
    if raw is None or raw.dtype == object:
        raise RequestError(f"{signature}: input '{name}' is not a rectangular array of numbers "
                           f"(expected shape {_fmt(spec['shape'])}; pad constituents with zeros to a common M)")
    if raw.dtype.kind not in "iuf":
        raise RequestError(f"{signature}: input '{name}' must hold numbers ({spec['dtype']}); got JSON "
                           f"{'booleans' if raw.dtype.kind == 'b' else 'strings'}")
    dtype = np.dtype(_DTYPES[spec["dtype"]])
    if dtype.kind == "i":
        if raw.dtype.kind == "f":
            if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
                raise RequestError(f"{signature}: input '{name}' must hold integers ({spec['dtype']})")
        info = np.iinfo(dtype)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            raise RequestError(f"{signature}: input '{name}' has values outside the {spec['dtype']} range")
    return raw.astype(dtype)


def check_inputs(signature: str, tensors: Mapping, specs: Mapping) -> dict:
    """Validate numpy inputs of ``signature`` against ``specs`` (exact dtypes); returns ``{name: ndarray}``."""
    inputs = _signature(signature, specs)
    if not isinstance(tensors, Mapping):
        raise RequestError(f"{signature}: expected named inputs {sorted(inputs)}, got {type(tensors).__name__}")
    missing = [n for n in inputs if n not in tensors]
    unknown = sorted(set(tensors) - set(inputs))
    if missing or unknown:
        raise RequestError(f"{signature}: expects inputs {list(inputs)}"
                           + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
    out, batch = {}, None
    for name, spec in inputs.items():
        x = tensors[name]
        if not isinstance(x, np.ndarray):
            raise RequestError(f"{signature}: input '{name}' must be a numpy array, got {type(x).__name__}")
        if x.dtype != np.dtype(_DTYPES[spec["dtype"]]):
            raise RequestError(f"{signature}: input '{name}' must have dtype {spec['dtype']}, got {x.dtype}")
        shape = spec["shape"]
        if x.ndim != len(shape) or any(d != -1 and x.shape[i] != d for i, d in enumerate(shape) if i):
            raise RequestError(f"{signature}: input '{name}' must have shape {_fmt(shape)}, got {list(x.shape)}")
        if batch is None:
            batch = (name, x.shape[0])
        elif x.shape[0] != batch[1]:
            raise RequestError(f"{signature}: inputs '{batch[0]}' and '{name}' have different batch sizes "
                               f"({batch[1]} and {x.shape[0]})")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise RequestError(f"{signature}: input '{name}' holds NaN or Inf; every value must be finite")
        out[name] = x
    if batch is not None and batch[1] == 0:
        raise RequestError(f"{signature}: the request holds no examples (batch size 0)")
    return out


# ----------------------------------------------------------------------------- REST
def parse_rest_request(body, specs: Mapping) -> Tuple[str, dict, bool]:
    """``(signature_name, {input: ndarray}, columnar)`` from a TF-Serving REST predict body (dict or JSON text)."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode()
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as err:
            raise RequestError(f"request body is not valid JSON ({err})") from None
    if not isinstance(body, dict):
        raise RequestError(f"request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise RequestError(f"unknown request keys {unknown}; expected 'signature_name' and one of 'instances' "
                           "(row form) or 'inputs' (columnar form)")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("a predict request needs exactly one of 'instances' (row form) or 'inputs' (columnar form)")
    signature = body.get("signature_name", DEFAULT_SIGNATURE)
    inputs = _signature(signature, specs)
    names = list(inputs)
    if "inputs" in body:
        columns = body["inputs"]
        if len(names) == 1 and not isinstance(columns, dict):
            columns = {names[0]: columns}
        if not isinstance(columns, dict):
            raise RequestError(f"{signature}: 'inputs' must be an object with the inputs {names}")
        raw = columns
    else:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError(f"{signature}: 'instances' must be a non-empty list, one entry per example")
        objects = [isinstance(i, dict) for i in instances]
        if any(objects) and not all(objects):
            raise RequestError(f"{signature}: 'instances' mixes objects and bare values")
        if not all(objects):
            if len(names) != 1:
                raise RequestError(f"{signature}: has inputs {names}; each instance must be an object with them")
            instances = [{names[0]: i} for i in instances]
        keys = set(instances[0])
        for k, inst in enumerate(instances):
            if set(inst) != keys:
                raise RequestError(f"{signature}: instance {k} has inputs {sorted(inst)}, instance 0 has "
                                   f"{sorted(keys)}; every instance needs the same inputs")
        raw = {name: [inst[name] for inst in instances] for name in keys}
    missing = [n for n in names if n not in raw]
    extra = sorted(set(raw) - set(names))
    if missing or extra:
        raise RequestError(f"{signature}: expects inputs {names}"
                           + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))
    tensors = {name: _from_json(raw[name], signature, name, inputs[name]) for name in names}
    return signature, check_inputs(signature, tensors, specs), "inputs" in body


def rest_response(outputs: Mapping, columnar: bool) -> dict:
    """TF-Serving's REST answer: ``{"outputs": {...}}`` (columnar) or ``{"predictions": [{...}, ...]}``."""
    lists = {name: np.asarray(v).tolist() for name, v in outputs.items()}
    if columnar:
        return {"outputs": lists}
    n = len(next(iter(lists.values())))
    return {"predictions": [{name: lists[name][i] for name in lists} for i in range(n)]}


# ----------------------------------------------------------------------------- gRPC
def _tf_dtype_name(enum: int) -> str:
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"dtype enum {enum}"


def parse_predict_request(request, specs: Mapping) -> Tuple[str, dict, list]:
    """``(signature_name, {input: ndarray}, output_filter)`` from a ``tensorflow.serving.PredictRequest``."""
    signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
    inputs = _signature(signature, specs)
    tensors = {}
    for name, proto in request.inputs.items():
        if name in inputs:
            want = tf.dtypes.as_dtype(inputs[name]["dtype"]).as_datatype_enum
            if proto.dtype != want:
                raise RequestError(f"{signature}: input '{name}' must have dtype {inputs[name]['dtype']}, got "
                                   f"{_tf_dtype_name(proto.dtype)}")
        try:
            tensors[name] = tf.make_ndarray(proto)
        except Exception as err:  # noqa: BLE001 - a malformed TensorProto
            raise RequestError(f"{signature}: input '{name}' is not a valid TensorProto ({err})") from None
    outputs = list(request.output_filter)
    return signature, check_inputs(signature, tensors, specs), outputs


# ----------------------------------------------------------------------------- local server
def _graph_message(signature: str, message: str) -> str:
    """The signature's own check message out of a TensorFlow InvalidArgumentError."""
    found = re.search(re.escape(signature) + r": [^\]\n]*?(?= : Tensor had|\]|\n|$)", message.replace("\\'", "'"))
    return found.group(0).rstrip() if found else f"{signature}: {message.strip()}"


class ServedModel:
    """A SavedModel version directory answering predict requests as TensorFlow Serving would.

    >>> served = ServedModel(tmp_path / "saved_models" / "tagger" / "1")
    >>> served.predict("from_constituents", constituents=c, jet=j)["probabilities"]
    >>> served.rest({"signature_name": "serving_default", "instances": [...]})   # {"predictions": [...]}
    >>> served.grpc(predict_request)                                              # PredictResponse

    Signature specs come from the loaded SavedModel itself; :attr:`metadata` is the
    exported ``assets/jettf_model.json`` (None for SavedModels not written by jettf).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "saved_model.pb").exists():
            raise FileNotFoundError(f"{self.path}: no saved_model.pb; pass a version directory "
                                    "(saved_models/NAME/VERSION)")
        self._loaded = tf.saved_model.load(str(self.path))
        self.specs = {}
        for name, fn in self._loaded.signatures.items():
            self.specs[name] = {
                key: {"dtype": spec.dtype.name, "shape": [-1 if d is None else int(d) for d in spec.shape]}
                for key, spec in fn.structured_input_signature[1].items()}
        try:
            self.metadata = read_metadata(self.path)
        except FileNotFoundError:
            self.metadata = None
        else:  # the documented argument order, for messages
            for name, order in signature_specs(self.metadata).items():
                if name in self.specs and set(order) == set(self.specs[name]):
                    self.specs[name] = {k: self.specs[name][k] for k in order}

    @property
    def class_names(self) -> Optional[list]:
        return None if self.metadata is None else list(self.metadata["class_names"])

    def _run(self, signature: str, tensors: dict) -> dict:
        fn = self._loaded.signatures[signature]
        try:
            out = fn(**{name: tf.constant(value) for name, value in tensors.items()})
        except tf.errors.InvalidArgumentError as err:
            raise RequestError(_graph_message(signature, err.message)) from None
        return {name: value.numpy() for name, value in out.items()}

    def predict(self, signature: str = DEFAULT_SIGNATURE, inputs: Optional[Mapping] = None, **named) -> dict:
        """``{output: ndarray}`` for numpy inputs (exact dtypes), given as a dict or as keywords."""
        tensors = dict(inputs or {}, **named)
        return self._run(signature, check_inputs(signature, tensors, self.specs))

    def rest(self, body) -> dict:
        """Answer a REST predict body (dict or JSON text) with TF-Serving's response dict."""
        signature, tensors, columnar = parse_rest_request(body, self.specs)
        return rest_response(self._run(signature, tensors), columnar)

    def grpc(self, request):
        """Answer a ``PredictRequest`` with a ``PredictResponse`` (honouring ``output_filter``)."""
        signature, tensors, wanted = parse_predict_request(request, self.specs)
        outputs = self._run(signature, tensors)
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise RequestError(f"{signature}: output_filter names unknown outputs {unknown}; outputs are "
                               f"{sorted(outputs)}")
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        response.model_spec.signature_name = signature
        for name, value in outputs.items():
            if not wanted or name in wanted:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response
