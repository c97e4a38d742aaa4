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
            tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=OPSET,
                                           tensors_to_rename=names, output_path=str(path))
            _check_runs(path)
        except Exception as err:  # noqa: BLE001 - tf2onnx raises many kinds; the reason is recorded, not hidden
            result[signature] = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
            Path(out_dir / f"{signature}.onnx").unlink(missing_ok=True)
            continue
        result[signature] = {"file": path.name, "inputs": [names.get(n, n) for n in inputs],
                             "outputs": [names.get(n, n) for n in outputs]}
    return result


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
