"""Tracker: which charged particles become tracks, and the measured track.

Efficiency is a table in (|eta|, pt) (Delphes' form); the curvature 1/pt is
smeared with a Gaussian of relative width a (+) b pt; phi and theta get ~1 mrad
errors. A track is drawn at its vertex direction (003: "the (eta, phi)-positions
of each reconstructed track").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Tracks", "efficiency", "pt_resolution", "reconstruct_tracks"]


class Tracks(NamedTuple):
    """Reconstructed tracks: ``index`` into the input particles, measured ``pt``, ``eta``, ``phi``."""

    index: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray


def _lookup(edges, x):
    """Bin of each ``x`` for upper ``edges`` (values above the last edge go to the last bin)."""
    return np.minimum(np.searchsorted(np.asarray(edges), x, side="left"), len(edges) - 1)


def efficiency(tracker, pt, eta) -> np.ndarray:
    """Track-finding efficiency per particle (0 outside |eta| < eta_max or below pt_min)."""
    pt, aeta = np.asarray(pt, dtype=np.float64), np.abs(np.asarray(eta, dtype=np.float64))
    table = np.asarray(tracker.efficiency, dtype=np.float64)
    row = _lookup(tracker.efficiency_eta_edges, aeta)
    col = np.searchsorted(np.asarray(tracker.efficiency_pt_edges), pt, side="left")  # pt == edge: lower bin
    eff = table[row, col]
    return np.where((aeta <= tracker.eta_max) & (pt > tracker.pt_min), eff, 0.0)


def pt_resolution(tracker, pt, eta) -> np.ndarray:
    """Relative resolution sigma(pt)/pt = a (+) b pt of the card, per particle."""
    k = _lookup(tracker.resolution_eta_edges, np.abs(eta))
    a, b = np.asarray(tracker.resolution_a)[k], np.asarray(tracker.resolution_b)[k]
    return np.hypot(a, b * np.asarray(pt, dtype=np.float64))


def reconstruct_tracks(tracker, pt, eta, phi, charge, rng) -> Tracks:
    """Tracks of the charged particles that the tracker finds, with measured kinematics."""
    charged = np.flatnonzero(np.asarray(charge) != 0)
    pt, eta, phi = pt[charged], eta[charged], phi[charged]
    found = rng.random(len(charged)) < efficiency(tracker, pt, eta)
    index, pt, eta, phi = charged[found], pt[found], eta[found], phi[found]
    sigma = pt_resolution(tracker, pt, eta)
    curvature = (1.0 + sigma * rng.standard_normal(len(index))) / pt
    curvature = np.maximum(curvature, 1e-6)  # a >100-sigma fluctuation through zero curvature: keep it finite
    theta = 2.0 * np.arctan(np.exp(-eta)) + tracker.angular_resolution * rng.standard_normal(len(index))
    theta = np.clip(theta, 1e-6, np.pi - 1e-6)
    phi = phi + tracker.angular_resolution * rng.standard_normal(len(index))
    return Tracks(index, 1.0 / curvature, -np.log(np.tan(theta / 2.0)), (phi + np.pi) % (2 * np.pi) - np.pi)
