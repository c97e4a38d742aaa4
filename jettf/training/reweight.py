"""Per-jet sample weights that remove a tagger's handle on jet pt (and mass): ``python -m jettf.train --reweight``.

Taggers learn whatever separates the classes, including the jet pt spectrum and the jet mass,
which physicists usually want them not to use (CMS and weaver reweight in pt and mass; 001 section 4
on mass sculpting). :func:`fit_reweighting` builds the weights from histograms of the *training
split only*:

* ``"pt"``: binary tasks reweight the background to the signal's pt spectrum (signal weight 1);
  multiclass tasks reweight every class to the pt spectrum of all training jets.
* ``"pt,mass"``: every class (signal included) to the same target in pt and *flat in mass*:
  ``target(pt, m) = target_pt(pt) x uniform(m)`` over the mass bins.

pt bins are quantiles of the target spectrum (equal counts), mass bins uniform between the 0.5% and
99.5% quantiles of all training jets (at most ``bins`` per axis, fewer for small samples: about ten jets
of the smallest class per bin); jets outside the edges take the edge bins, and a bin without training
jets of a class gives that class's jets weight 1. Weights are capped
at ``max_weight`` times the class mean and normalized to mean 1 per class, so each class keeps its
share of the loss. The table is saved with the run (``reweight.json``) and applied per batch in
tf.data (:meth:`Reweighting.weights_tf`), so training and evaluation use the same weights.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

__all__ = ["Reweighting", "fit_reweighting", "VARIABLES"]

#: ``--reweight`` values and the jet variables they use (columns of the records' ``jet``: pt 0, mass 3).
VARIABLES = {"pt": ("pt",), "pt,mass": ("pt", "mass")}
_JET_COLUMN = {"pt": 0, "mass": 3}


@dataclasses.dataclass(frozen=True)
class Reweighting:
    """A weight per (class, pt bin[, mass bin]).

    Attributes:
        variables: ``("pt",)`` or ``("pt", "mass")``.
        edges: bin edges per variable (GeV).
        table: float ``[n_classes, n_pt(, n_mass)]`` weights.
    """

    variables: tuple
    edges: tuple
    table: np.ndarray

    def _bins(self, values, edges):
        return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)

    def weights(self, labels, jet) -> np.ndarray:
        """float32 ``[N]`` weights of jets with ``labels`` ``[N]`` and ``jet`` ``[N, 4]`` (pt, eta, phi, mass)."""
        jet = np.asarray(jet, dtype=np.float64)
        index = (np.asarray(labels, dtype=np.int64),) + tuple(
            self._bins(jet[:, _JET_COLUMN[v]], np.asarray(e)) for v, e in zip(self.variables, self.edges))
        return self.table[index].astype(np.float32)

    def weights_tf(self, labels, jet):
        """The same in TensorFlow (for a tf.data map): ``labels`` int ``[B]``, ``jet`` ``[B, 4]``."""
        import tensorflow as tf

        index = [tf.cast(labels, tf.int32)]
        for v, e in zip(self.variables, self.edges):
            edges = tf.constant(np.asarray(e, dtype=np.float32))
            b = tf.searchsorted(edges, jet[:, _JET_COLUMN[v]], side="right") - 1
            index.append(tf.clip_by_value(b, 0, len(e) - 2))
        return tf.gather_nd(tf.constant(self.table.astype(np.float32)), tf.stack(index, axis=1))

    def to_dict(self) -> dict:
        return {"variables": list(self.variables), "edges": [list(map(float, e)) for e in self.edges],
                "table": self.table.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Reweighting":
        return cls(tuple(d["variables"]), tuple(np.asarray(e, dtype=np.float64) for e in d["edges"]),
                   np.asarray(d["table"], dtype=np.float64))


def fit_reweighting(mode: str, labels, jet, n_classes: int, signal: Optional[int] = None, *, bins: int = 20,
                    max_weight: float = 20.0) -> Reweighting:
    """Weights for ``mode`` (``"pt"`` or ``"pt,mass"``) from training jets (module docstring).

    ``labels`` int ``[N]``, ``jet`` ``[N, 4]`` (pt, eta, phi, mass in GeV); ``signal`` is the signal label of a
    binary task (None: multiclass, every class to the pooled spectrum).
    """
    if mode not in VARIABLES:
        raise ValueError(f"--reweight: expected one of {sorted(VARIABLES)}, got {mode!r}")
    labels = np.asarray(labels, dtype=np.int64)
    jet = np.asarray(jet, dtype=np.float64)
    if jet.ndim != 2 or jet.shape[1] != 4 or len(jet) != len(labels):
        raise ValueError(f"jet: expected [N={len(labels)}, 4] (pt, eta, phi, mass), got shape {jet.shape}")
    pt, mass = jet[:, 0], jet[:, 3]
    reference = labels == signal if signal is not None else np.ones(len(labels), bool)
    # About 10 jets of the smallest class per bin at least, so a bin's weight is not one jet's accident.
    smallest = min(int((labels == c).sum()) for c in np.unique(labels))
    per_axis = smallest / 10 if mode == "pt" else np.sqrt(smallest / 10)
    bins = int(np.clip(per_axis, 2, bins))
    pt_edges = np.unique(np.quantile(pt[reference], np.linspace(0, 1, bins + 1)))
    edges = [pt_edges]
    if mode == "pt,mass":
        edges.append(np.linspace(*np.quantile(mass, [0.005, 0.995]), bins + 1))
    variables = VARIABLES[mode]
    dummy = Reweighting(variables, tuple(edges), np.zeros((n_classes,) + tuple(len(e) - 1 for e in edges)))
    index = dummy._bins(pt, pt_edges), *([dummy._bins(mass, edges[1])] if mode == "pt,mass" else [])
    shape = tuple(len(e) - 1 for e in edges)
    flat = np.ravel_multi_index(index, shape)
    target_pt = np.bincount(dummy._bins(pt[reference], pt_edges), minlength=shape[0]).astype(np.float64)
    target = target_pt / target_pt.sum()
    if mode == "pt,mass":
        target = np.outer(target, np.full(shape[1], 1.0 / shape[1]))
    table = np.zeros((n_classes,) + shape)
    for c in range(n_classes):
        members = labels == c
        if not members.any():
            continue
        if mode == "pt" and c == signal:
            table[c] = 1.0
            continue
        density = np.bincount(flat[members], minlength=int(np.prod(shape))).reshape(shape) / members.sum()
        # A bin without training jets of this class has no estimate: its (test) jets keep weight 1.
        ratio = np.divide(target, density, out=np.ones(shape), where=density > 0)
        w = ratio.reshape(-1)[flat[members]]
        cap = max_weight * w.mean()
        ratio = np.minimum(ratio, cap)
        table[c] = ratio / ratio.reshape(-1)[flat[members]].mean()
    return Reweighting(variables, tuple(edges), table)

