"""Expert features of lepton candidates computed from their calorimeter images (004 chapters 3 and 4).

Electrons (004 section 3.5, eqs. 3.1-3.4), from the ECAL image (31 x 31 cells of (pi/126, 0.025), centred on
the hottest cell, axis 1 = eta) and the HCAL image (8 x 8 towers covering the same region), vectorized over
candidates; ``a x b`` windows are ``a`` cells in eta by ``b`` in phi, centred on the image centre:

- ``r_had`` = sum HCAL E_T / sum ECAL E_T over the whole images (eq. 3.1);
- ``w_eta2`` = sqrt(<eta^2> - <eta>^2) with weights E in the 3 x 5 window, eta relative to the centre in
  units of eta (eq. 3.2);
- ``r_phi`` = E(3x3) / E(3x7), ``r_eta`` = E(3x7) / E(7x7) (eq. 3.3);
- ``sigma_eta_eta`` = sqrt(sum w (eta - eta_bar)^2 / sum w) over the non-zero cells of the 5 x 5 window,
  w = |ln(E / GeV)|, eta in cell units, eta_bar the w-weighted mean (eq. 3.4; 004's "eta_bar = 0" reading
  is the special case of a symmetric deposit; 0 when every weight is 0);
- ``iso_0.3``, ``iso_0.4``: ECAL energy E in the cells whose centre lies within delta-R < 0.3 / 0.4 of the
  image centre, the core included (004 section 3.5.2, literally: "we sum the ECal energy in cells");
- :func:`candidate_mass`: the invariant mass of all ECAL and HCAL cells of the images as massless
  four-vectors (E_T, eta, phi) (004's M_jet, section 3.8; exact from relative coordinates: the mass does not
  change under eta shifts and phi rotations).

Muons (004 section 4.3.1): :func:`isolation_cones` I_mu(R0) = sum of pixel E_T within delta-R < R0 of the
image centre over the muon pt, for 18 equally spaced R0 in [0.025, 0.45], from the pixels of the 32 x 32
image (pixel centres).

Units: GeV, radians. Windows, radii and pixel sizes come from :mod:`jettf.calo.cards`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ELECTRON_FEATURES", "electron_features", "candidate_mass", "isolation_cones", "pixel_grid",
           "ISOLATION_RADII"]

from jettf.calo.cards import ELECTRON_FEATURES, ISOLATION_RADII
from jettf.calo.images import pixel_delta_r


def _window(images, size_eta: int, size_phi: int):
    h, w = images.shape[1:]
    ce, cp = h // 2, w // 2
    return images[:, ce - size_eta // 2:ce + size_eta // 2 + 1, cp - size_phi // 2:cp + size_phi // 2 + 1]


def _ratio(a, b):
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def pixel_grid(n_eta: int, n_phi: int, deta: float, dphi: float):
    """(delta eta, delta phi) ``[n_eta, n_phi]`` of the pixel centres from the central pixel's centre."""
    steps_eta = (np.arange(n_eta) - n_eta // 2) * deta
    steps_phi = (np.arange(n_phi) - n_phi // 2) * dphi
    return np.meshgrid(steps_eta, steps_phi, indexing="ij")


def electron_features(ecal_e, ecal_et, hcal_et, deta: float = 0.025, dphi: float = np.pi / 126,
                      iso_radii: Sequence[float] = (0.3, 0.4)) -> np.ndarray:
    """004's seven standard features ``[N, 7]`` (float64), in the order of :data:`ELECTRON_FEATURES`.

    Args:
        ecal_e, ecal_et: ECAL images in E and E_T (GeV) ``[N, H, W]`` (odd sides; the centre pixel is the
            hottest cell).
        hcal_et: HCAL image in E_T (GeV) ``[N, h, w]``.
        deta, dphi: ECAL cell size (the ``atlas`` card's, 004 section 3.4.1).
    """
    ecal_e = np.asarray(ecal_e, np.float64)
    ecal_et = np.asarray(ecal_et, np.float64)
    hcal_et = np.asarray(hcal_et, np.float64)
    if ecal_e.ndim != 3 or ecal_e.shape != ecal_et.shape or ecal_e.shape[1] % 2 == 0 or ecal_e.shape[2] % 2 == 0:
        raise ValueError(f"electron_features: ecal_e {ecal_e.shape} and ecal_et {ecal_et.shape}: expected equal "
                         "[N, H, W] with odd H and W (the hottest cell at the centre)")
    if hcal_et.ndim != 3 or len(hcal_et) != len(ecal_e):
        raise ValueError(f"electron_features: hcal_et {hcal_et.shape}: expected [N, h, w] with N = {len(ecal_e)}")
    r_had = _ratio(hcal_et.sum(axis=(1, 2)), ecal_et.sum(axis=(1, 2)))

    w35 = _window(ecal_e, 3, 5)
    eta35 = (np.arange(3) - 1)[None, :, None] * deta
    total = w35.sum(axis=(1, 2))
    mean = _ratio((w35 * eta35).sum(axis=(1, 2)), total)
    second = _ratio((w35 * eta35**2).sum(axis=(1, 2)), total)
    w_eta2 = np.sqrt(np.maximum(second - mean**2, 0.0))

    e33, e37, e77 = (_window(ecal_e, a, b).sum(axis=(1, 2)) for a, b in ((3, 3), (3, 7), (7, 7)))
    r_phi, r_eta = _ratio(e33, e37), _ratio(e37, e77)

    w55 = _window(ecal_e, 5, 5)
    weight = np.where(w55 > 0, np.abs(np.log(np.where(w55 > 0, w55, 1.0))), 0.0)
    eta55 = (np.arange(5) - 2)[None, :, None].astype(np.float64)
    wsum = weight.sum(axis=(1, 2))
    eta_bar = _ratio((weight * eta55).sum(axis=(1, 2)), wsum)
    sigma = np.sqrt(np.maximum(_ratio((weight * (eta55 - eta_bar[:, None, None]) ** 2).sum(axis=(1, 2)), wsum), 0.0))

    g_eta, g_phi = pixel_grid(ecal_e.shape[1], ecal_e.shape[2], deta, dphi)
    dr = np.hypot(g_eta, g_phi)
    iso = [(ecal_e * (dr < r)[None]).sum(axis=(1, 2)) for r in iso_radii]
    return np.stack([r_had, w_eta2, r_phi, r_eta, sigma, *iso], axis=1)


def candidate_mass(ecal_et, hcal_et, hcal_offset=None, ecal_cell=(0.025, np.pi / 126),
                   hcal_cell=(0.1, np.pi / 31)) -> np.ndarray:
    """Invariant mass (GeV) ``[N]`` of the ECAL and HCAL pixels as massless four-vectors at their centres.

    ``hcal_offset`` ``[N, 2]``: (delta eta, delta phi) of the HCAL image's centre from the ECAL image's
    centre (as stored in ``electrons.h5``; default 0). An even HCAL side has its centre on a pixel corner.
    """
    parts = []
    ecal_et = np.asarray(ecal_et, np.float64)
    hcal_et = np.asarray(hcal_et, np.float64)
    n = len(ecal_et)
    g_eta, g_phi = pixel_grid(ecal_et.shape[1], ecal_et.shape[2], *ecal_cell)
    parts.append((ecal_et.reshape(n, -1), np.broadcast_to(g_eta.ravel(), (n, g_eta.size)),
                  np.broadcast_to(g_phi.ravel(), (n, g_phi.size))))
    h, w = hcal_et.shape[1:]
    h_eta = (np.arange(h) - (h - 1) / 2) * hcal_cell[0]
    h_phi = (np.arange(w) - (w - 1) / 2) * hcal_cell[1]
    he, hp = np.meshgrid(h_eta, h_phi, indexing="ij")
    offset = np.zeros((n, 2)) if hcal_offset is None else np.asarray(hcal_offset, np.float64).reshape(n, 2)
    parts.append((hcal_et.reshape(n, -1), he.ravel()[None] + offset[:, :1], hp.ravel()[None] + offset[:, 1:]))
    px = py = pz = e = 0.0
    for et, eta, phi in parts:
        px = px + (et * np.cos(phi)).sum(axis=1)
        py = py + (et * np.sin(phi)).sum(axis=1)
        pz = pz + (et * np.sinh(eta)).sum(axis=1)
        e = e + (et * np.cosh(eta)).sum(axis=1)
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))


def isolation_cones(image_et, muon_pt, radii: Sequence[float] = ISOLATION_RADII, cone: float = 0.45) -> np.ndarray:
    """I_mu(R0) ``[N, len(radii)]``: pixel E_T within delta-R < R0 of the image centre over the muon pt.

    ``image_et`` ``[N, P, P]`` covers [-cone, cone]^2 (004: 32 x 32, 0.45); pixel centres decide membership.
    """
    image_et = np.asarray(image_et, np.float64)
    muon_pt = np.asarray(muon_pt, np.float64).reshape(-1)
    if image_et.ndim != 3 or image_et.shape[1] != image_et.shape[2] or len(image_et) != len(muon_pt):
        raise ValueError(f"isolation_cones: image_et {image_et.shape} and muon_pt {muon_pt.shape}: expected "
                         "[N, P, P] and [N]")
    if np.any(~(muon_pt > 0)):
        raise ValueError("isolation_cones: muon_pt must be > 0 GeV")
    dr = pixel_delta_r(image_et.shape[1], cone).ravel()
    order = np.argsort(dr, kind="stable")
    cumulative = np.cumsum(image_et.reshape(len(image_et), -1)[:, order], axis=1)
    counts = np.searchsorted(dr[order], np.asarray(radii, np.float64), side="left")  # pixels with dR < R0
    padded = np.concatenate([np.zeros((len(image_et), 1)), cumulative], axis=1)
    return padded[:, counts] / muon_pt[:, None]
