"""Propagation from the vertex to a calorimeter face through the solenoid field.

A particle of charge q and transverse momentum pt (GeV) moves on a helix of
radius rho = pt / (0.3 |q| B) (m, B in T) inside the field cylinder and on a
straight line outside it. Seen from the beam line, its azimuth at transverse
distance r from the origin is turned by asin(r / (2 rho)) ~ 0.3 q B r / (2 pt),
clockwise for q > 0 in a field along +z. A particle whose circle never reaches
the barrel face (2 rho < R, i.e. pt < 0.3 B R / 2, a "looper") is lost unless it
reaches the end-cap face within its first half turn. Vertices are at the origin.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Impact", "propagate", "bending"]


class Impact(NamedTuple):
    """Where particles meet a calorimeter face: ``eta``, ``phi`` of the impact point seen from
    the origin, its transverse distance ``r`` (m), and ``reached`` (False for loopers)."""

    eta: np.ndarray
    phi: np.ndarray
    r: np.ndarray
    reached: np.ndarray


def bending(pt, charge, field, radius):
    """Exact azimuthal turn (rad) of the impact point at ``radius`` inside a uniform field;
    NaN for loopers. Small-angle form: -0.3 q B R / (2 pt)."""
    x = 0.3 * np.abs(field) * radius / (2.0 * np.asarray(pt, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return -np.sign(charge) * np.sign(field) * np.where(x <= 1.0, np.arcsin(np.minimum(x, 1.0)), np.nan)


def propagate(pt, eta, phi, charge, solenoid, radius: float, half_length: float) -> Impact:
    """Impact points on the calorimeter surface (barrel at ``radius``, end-caps at |z| = ``half_length``, m).

    Args:
        pt, eta, phi, charge: particles at the vertex (GeV, -, rad, e), float64 ``[P]``.
        solenoid: :class:`jettf.detector.cards.Solenoid`.
    """
    pt, eta, phi, charge = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, charge))
    sinh = np.sinh(eta)
    abs_sinh = np.maximum(np.abs(sinh), 1e-12)
    charged = (charge != 0) & (solenoid.field != 0)
    q = np.where(charged, np.sign(charge) * np.sign(solenoid.field), 0.0)
    # Helix radius (m); straight lines get rho = inf.
    with np.errstate(divide="ignore"):
        rho = np.where(charged, pt / (0.3 * np.abs(charge) * abs(solenoid.field)), np.inf)

    # Stage 1, inside the field: transverse path length s1 to the nearer of the field's edge and the face.
    r1, z1 = min(radius, solenoid.radius), min(half_length, solenoid.half_length)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(np.isfinite(rho), r1 / (2.0 * rho), 0.0)
        s_barrel = np.where(x <= 1.0, np.where(np.isfinite(rho), 2.0 * rho * np.arcsin(np.minimum(x, 1.0)), r1), np.inf)
    s_endcap = z1 / abs_sinh
    s1 = np.minimum(s_barrel, s_endcap)
    reached = np.isfinite(s_barrel) | (s_endcap <= np.pi * rho)  # loopers: end-cap within the first half turn
    s1 = np.where(reached, s1, 0.0)
    turn = np.where(np.isfinite(rho), s1 / rho, 0.0)  # angle the momentum has turned by
    phi1 = phi - q * turn / 2.0  # azimuth of the position: half the turn (chord of a circle through the origin)
    with np.errstate(invalid="ignore"):
        chord = np.where(np.isfinite(rho), 2.0 * rho * np.sin(turn / 2.0), s1)
    z = sinh * s1

    # Stage 2, outside the field (only when the face lies beyond it): a straight line in the final direction.
    direction = phi - q * turn
    alpha = direction - phi1
    t_barrel = -chord * np.cos(alpha) + np.sqrt(np.maximum(radius**2 - (chord * np.sin(alpha)) ** 2, 0.0))
    t_endcap = np.maximum(half_length - np.abs(z), 0.0) / abs_sinh
    t = np.maximum(np.minimum(t_barrel, t_endcap), 0.0)
    t = np.where(reached, t, 0.0)
    x_pos = chord * np.cos(phi1) + t * np.cos(direction)
    y_pos = chord * np.sin(phi1) + t * np.sin(direction)
    z = z + sinh * t
    r = np.hypot(x_pos, y_pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_out = np.arcsinh(np.where(r > 0, z / np.maximum(r, 1e-300), np.sign(z) * 1e300))
    phi_out = np.where(charged, np.arctan2(y_pos, x_pos), phi)
    eta_out = np.where(charged, eta_out, eta)  # neutral: the vertex direction, exactly
    return Impact(eta_out, (phi_out + np.pi) % (2 * np.pi) - np.pi, r, reached)
