"""Analytic FLOPs per jet of a Keras model, backend-independent.

Convention (the one of the EfficientNet / ResNet papers and of ANCHORS.md's "59 GFLOP per training image"):
FLOPs = 2 x multiply-accumulates of the weight layers in one forward pass of one example, counting
``Conv1D/2D`` (incl. grouped), ``DepthwiseConv2D``, ``SeparableConv2D``, ``Conv2DTranspose`` and ``Dense``
(also on [N, M, K] inputs, as in the PFN/EFN per-particle networks). Biases, batch norm, activations, pooling,
resizing, element-wise additions and multiplications are not counted (they are a few per cent for these
networks). A training step costs about 3x the forward FLOPs. Nested models (keras.applications backbones) are
walked recursively.
"""

from __future__ import annotations

import math

import keras

__all__ = ["count_flops", "layer_macs"]


def _prod(dims) -> int:
    out = 1
    for d in dims:
        if d is None:
            raise ValueError("count_flops: the model has an unknown (None) non-batch dimension; build it with a fixed "
                             "input_shape (e.g. pfn/efn with input_shape=(30, 4))")
        out *= int(d)
    return out


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for one example (0 for layers that are not counted)."""
    L = keras.layers
    if isinstance(layer, L.Dense):
        out = layer.output.shape  # (None, ..., units)
        return _prod(out[1:-1]) * _prod(layer.kernel.shape)
    if isinstance(layer, L.SeparableConv2D):
        out = layer.output.shape
        dw = _prod(out[1:-1]) * _prod(layer.depthwise_kernel.shape)  # evaluated at output resolution
        pw = _prod(out[1:]) * int(layer.pointwise_kernel.shape[-2])
        return dw + pw
    if isinstance(layer, L.DepthwiseConv2D):
        out = layer.output.shape
        return _prod(out[1:-1]) * _prod(layer.kernel.shape)
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)) and not isinstance(layer, L.Conv2DTranspose):
        out = layer.output.shape
        return _prod(out[1:-1]) * _prod(layer.kernel.shape)
    if isinstance(layer, L.Conv2DTranspose):
        inp = layer.input.shape
        return _prod(inp[1:-1]) * _prod(layer.kernel.shape)
    return 0


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def count_flops(model: keras.Model, per_layer: bool = False):
    """Forward FLOPs per example (2 x MACs, see module docstring); with ``per_layer`` also a {name: FLOPs} dict."""
    table = {}
    for layer in _walk(model):
        macs = layer_macs(layer)
        if macs:
            table[layer.name] = 2 * macs
    total = int(math.fsum(table.values()))
    return (total, table) if per_layer else total
