"""ONNX files of an exported version, for ONNX Runtime (weaver-core, CMSSW): ``python -m jettf.export RUN --format onnx``.

Each signature of the SavedModel (``serving_default``, ``from_constituents``) is converted with tf2onnx
from the SavedModel itself, so the ONNX graph is the served graph: the tagger with its
:class:`jettf.images.ImagePreparation`, and for ``from_constituents`` the in-graph rendering. Keras'
``model.export(format="onnx")`` is not used: it traces the model in its default (training) mode, so the
random flips end up in the graph as ops ONNX Runtime cannot run, and captured constants of
``Normalization`` layers become inputs.

ONNX has no assertion op, so the files do not check their inputs the way the SavedModel does (shapes,
finite values, pt >= 0, jet pt > 0): validate requests before ``session.run``. Inputs and outputs keep
the signature's names (``image``, ``global_features``, ``constituents``, ``jet``, ...; ``class_ids``,
``probabilities``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

__all__ = ["convert_signatures", "OPSET"]

#: ONNX opset of the files (ONNX Runtime >= 1.14 runs it).
OPSET = 17


def convert_signatures(saved_model_dir, signatures, out_dir=None) -> Dict[str, dict]:
    """Convert each signature of a SavedModel to ``<out_dir>/<signature>.onnx``.

    Returns ``{signature: {"file", "inputs", "outputs"}}`` for the converted ones and
    ``{signature: {"error": why}}`` for any tf2onnx cannot express (the export goes on without it).
    """
    import tf2onnx
    from tf2onnx import tf_loader

    out_dir = Path(out_dir or saved_model_dir)
    result = {}
    for signature in signatures:
        try:
            graph_def, inputs, outputs, names = tf_loader.from_saved_model(
                str(saved_model_dir), None, None, signatures=[signature], return_tensors_to_rename=True)
            path = out_dir / f"{signature}.onnx"
            proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs,
                                                      opset=OPSET, tensors_to_rename=names)
            _save(_without_no_op_arithmetic(proto), path)
            _check_runs(path)
        except Exception as err:  # noqa: BLE001 - tf2onnx raises many kinds; the reason is recorded, not hidden
            result[signature] = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
            Path(out_dir / f"{signature}.onnx").unlink(missing_ok=True)
            continue
        result[signature] = {"file": path.name, "inputs": [names.get(n, n) for n in inputs],
                             "outputs": [names.get(n, n) for n in outputs]}
    return result


def _without_no_op_arithmetic(model):
    """The graph without ``x - 0``, ``x + 0``, ``x * 1`` and ``x / 1`` by constant tensors (e.g. an input
    ``Normalization`` that was never adapted): they compute nothing, and ONNX Runtime broadcasts a
    channels-last constant slowly (2.4 of 10 ms per 100 EffNet-S jets on one core)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    neutral = {"Sub": 0.0, "Add": 0.0, "Mul": 1.0, "Div": 1.0}
    outputs = {o.name for o in model.graph.output}
    rename, keep = {}, []
    for node in model.graph.node:
        inputs = [rename.get(i, i) for i in node.input]
        del node.input[:]
        node.input.extend(inputs)
        value = neutral.get(node.op_type)
        other = constants.get(inputs[1]) if value is not None and len(inputs) == 2 else None
        same_shape = shapes.get(node.input[0]) is not None and shapes.get(node.input[0]) == shapes.get(node.output[0])
        if other is not None and np.all(other == value) and same_shape and node.output[0] not in outputs:
            rename[node.output[0]] = inputs[0]
            continue
        keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {i for node in keep for i in node.input}
    unused = [t for t in model.graph.initializer if t.name not in used]
    for tensor in unused:
        model.graph.initializer.remove(tensor)
    return model


def _save(model, path: Path) -> None:
    import onnx

    onnx.save(model, str(path))


def _check_runs(path: Path) -> None:
    """A converted file must load in ONNX Runtime (tf2onnx can emit ops no runtime implements); without
    onnxruntime installed, the ONNX checker's full check stands in."""
    try:
        import onnxruntime
    except ImportError:
        import onnx

        onnx.checker.check_model(str(path), full_check=True)
        return
    onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
