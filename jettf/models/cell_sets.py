"""Per-cell inputs of the Deep-Sets models for objects with a known centre (004 chapter 4: the muon).

:class:`jettf.models.layers.ConstituentFeatures` measures angles from the jet's pT-weighted centroid, which
suits jets but hides where the lepton is: 004 section 4.6 finds the angle of a cell to the muon essential,
and its PFN reads the pixels' coordinates relative to the image centre (App. A.1.2). :class:`CentredCellFeatures`
computes the same features with the angles taken as given (relative to (0, 0), the candidate's position):
``build("pfn", ..., center="origin")`` / ``build("efn", ..., center="origin")`` use it.
"""

from __future__ import annotations

import keras
from keras import ops

from .layers import PFN_FEATURE_SCALING, PFN_FEATURES, ConstituentFeatures

__all__ = ["CentredCellFeatures"]


@keras.saving.register_keras_serializable(package="jettf")
class CentredCellFeatures(ConstituentFeatures):
    """:class:`~jettf.models.layers.ConstituentFeatures` with delta eta = eta and delta phi = phi: the
    inputs' coordinates are already relative to the object's centre (e.g. image pixels around a muon)."""

    def call(self, constituents):
        x = ops.cast(constituents, "float32")
        pt, eta, phi, energy = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
        mask = ops.cast(pt > 0.0, "float32")
        tiny = 1e-12
        z = pt * mask / ops.maximum(ops.sum(pt * mask, axis=1, keepdims=True), tiny)
        deta, dphi = eta * mask, phi * mask
        if self.mode == "efn":
            return z, ops.stack([deta, dphi], axis=-1)

        def safe_log(v):
            return ops.where(mask > 0, ops.log(ops.maximum(v, tiny)), 0.0)

        e_sum = ops.sum(energy * mask, axis=1, keepdims=True)
        raw = {
            "log_pt": safe_log(pt),
            "log_e": safe_log(energy),
            "log_pt_frac": safe_log(z),
            "log_e_frac": safe_log(energy / ops.maximum(e_sum, tiny)),
            "delta_eta": deta,
            "delta_phi": dphi,
            "delta_r": ops.sqrt(deta * deta + dphi * dphi),
        }
        feats = []
        for key in PFN_FEATURES:
            centre, scale = PFN_FEATURE_SCALING[key]
            feats.append((raw[key] - centre) * scale * mask if self.scaled else raw[key])
        return mask, ops.stack(feats, axis=-1)

