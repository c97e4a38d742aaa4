"""N-subjettiness tau_N for a batch of jets (Thaler, Van Tilburg, arXiv:1011.2268, 1108.2701).

With fastjet-contrib's ``NormalizedMeasure(beta, R0)``,

    tau_N = sum_k pt_k min_a (Delta R_ka)^beta / sum_k pt_k R0^beta,

where a runs over N axes and Delta R uses rapidity and azimuth. For
``KT_Axes`` (``WTA_KT_Axes``) the axes are the N exclusive subjets of a kt
clustering of the constituents with E-scheme (winner-take-all pt) recombination,
as in fastjet-contrib: all jets are clustered by one fastjet call, and the
distances and sums are numpy over the whole batch. The one-pass minimised axes
are delegated to fastjet-contrib's Njettiness (one C++ call per beta).
Jets with n <= N constituents have tau_N = 0 (every particle is an axis).
"""

from __future__ import annotations

import warnings
from typing import Dict, Sequence

import numpy as np

from .ecf import _pow

__all__ = ["nsubjettiness", "rapidity"]

# fastjet's JetDefinition::max_allowable_R: large enough that no particle merges with
# the beam before the last exclusive step.
_KT_R = 1000.0
_MAX_RAP = 1e5
_SAME_POINT_DR2 = 1e-24  # Delta R < 1e-12: rounding noise, never two distinct float32 particles


def rapidity(e, px, py, pz):
    """Rapidity as fastjet's PseudoJet computes it: m^2 clipped at 0, |y| at most 1e5 (fastjet's MaxRap)."""
    kt2 = px * px + py * py
    m2 = np.maximum((e + pz) * (e - pz) - kt2, 0.0)
    ep = e + np.abs(pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 0.5 * np.log((kt2 + m2) / (ep * ep))
    y = np.clip(np.where(ep > 0, y, 0.0), -_MAX_RAP, _MAX_RAP)
    return np.where(pz > 0, -y, y)


def nsubjettiness(p4: np.ndarray, counts: np.ndarray, ns: Sequence[int], betas: Sequence[float], r0: float,
                  axes: str) -> Dict[tuple, np.ndarray]:
    """tau_N for every jet.

    Args:
        p4: ``[P, 4]`` float64 (E, px, py, pz) of all constituents, jet after jet (GeV).
        counts: ``[J]`` constituents per jet (sums to P).
        ns: the N to compute; betas: angular exponents; r0: normalisation radius.
        axes: fastjet-contrib axes name (see :data:`jettf.features.spec.NSUB_AXES`).

    Returns:
        ``{(N, beta): [J] float64}``.
    """
    import awkward as ak
    import fastjet

    ns = sorted(set(ns))
    events = ak.unflatten(ak.zip({"px": p4[:, 1], "py": p4[:, 2], "pz": p4[:, 3], "E": p4[:, 0]}), counts)
    scheme = fastjet.WTA_pt_scheme if "WTA" in axes else fastjet.E_scheme
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fastjet warns about exclusive jets of non-kt algorithms
        cs = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.kt_algorithm, _KT_R, scheme))
        if axes.startswith("OnePass"):
            out = {}
            for beta in betas:
                taus = ak.to_numpy(
                    cs.njettiness(measure_definition="NormalizedMeasure", axes_definition=axes, njets=ns,
                                  beta=float(beta), R0=float(r0))
                ).reshape(len(counts), len(ns))
                out.update({(n, beta): taus[:, i] for i, n in enumerate(ns)})
            return out
        subjets = {n: cs.exclusive_jets_up_to(n) for n in ns}

    jet_of = np.repeat(np.arange(len(counts)), counts)
    pt = np.hypot(p4[:, 1], p4[:, 2])
    y = rapidity(*p4.T)[:, None]
    phi = np.arctan2(p4[:, 2], p4[:, 1])[:, None]
    norm = np.bincount(jet_of, weights=pt, minlength=len(counts))
    out = {}
    for n in ns:
        ay, aphi, valid = (np.repeat(a, counts, axis=0) for a in _padded_axes(subjets[n], n))
        dphi = np.abs(phi - aphi)
        np.minimum(dphi, 2.0 * np.pi - dphi, out=dphi)
        dphi *= dphi
        dy = y - ay
        dy *= dy
        dy += dphi
        dy[~valid] = np.inf
        dr2 = dy.min(axis=1)
        # An axis that is a single particle sits at that particle (distance 0 in fastjet-contrib);
        # recomputed rapidities can leave ~1e-16 of rounding, which beta = 0.5 would amplify.
        dr2[dr2 < _SAME_POINT_DR2] = 0.0
        dr = np.sqrt(dr2)
        for beta in betas:
            num = np.bincount(jet_of, weights=pt * _pow(dr, beta), minlength=len(counts))
            tau = np.zeros(len(counts))
            np.divide(num, norm * r0**beta, out=tau, where=norm > 0)
            out[(n, beta)] = tau
    return out


def _padded_axes(jets, n):
    """Axes as padded ``[J, n]`` rapidity, azimuth and validity arrays (numpy scatter of the flat subjets)."""
    import awkward as ak

    counts = np.minimum(ak.to_numpy(ak.num(jets)), n)
    flat = ak.flatten(jets)  # exclusive_jets_up_to(n): at most n per jet
    valid = np.arange(n)[None, :] < counts[:, None]
    fields = []
    for name in ("E", "px", "py", "pz"):
        padded = np.zeros((len(counts), n))
        padded[valid] = ak.to_numpy(flat[name]).astype(np.float64)
        fields.append(padded)
    e, px, py, pz = fields
    return rapidity(e, px, py, pz), np.arctan2(py, px), valid
