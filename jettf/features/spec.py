"""`FeatureSpec`: which global jet features to compute, and with which parameters.

A frozen, hashable dataclass; its JSON and fingerprint travel with every
dataset so a model knows its inputs. The default is the EffNet-S set of 002,
section 2.3 (47 features), without its D_3 and L series, and it is exact: every
column named after a paper observable is that observable on all of the jet's
constituents, as fastjet-contrib (Nsubjettiness, EnergyCorrelator) computes it.

Feature names
-------------
Numbers in names are the shortest decimal with ``.`` written ``p``
(1.0 -> ``1``, 0.5 -> ``0p5``, 1.5 -> ``1p5``), so every name is unique.

=============================  ==============================================================
``jet_pt jet_eta jet_phi jet_mass``  jet four-momentum as stored in the batch (GeV, -, rad, GeV)
``n_constituents``             number of constituents
``tau{N}{N-1}_b{beta}``        tau_N / tau_{N-1}, e.g. ``tau21_b1``, ``tau32_b0p5``
``c{N}_b{beta}``               C_N^beta, e.g. ``c2_b1``
``d2_a{alpha}_b{beta}``        D_2^(alpha, beta), e.g. ``d2_a1_b1``
``u{n}_b{beta}``, ``m{n}_b{beta}``, ``n{n}_b{beta}``   U_n, M_n, N_n, e.g. ``u1_b0p5``, ``n2_b1``
``..._k{k}``                   the truncated approximation (below), e.g. ``c3_b2_k20``, ``u2_b1_k40``
``efp_d{d}_{j}``               the j-th energy-flow polynomial with d edges (energyflow's order)
=============================  ==============================================================

Columns come in this order: kinematics, N-subjettiness (ratio outer, beta
inner), the C, D2, U, M, N series (index outer, beta inner), then EFPs.
:meth:`FeatureSpec.names` is the reference.

Truncation
----------
No preset truncates. Sums over all triplets and quadruplets grow as n^3 and n^4,
and they are computed exactly by compiled loops (:mod:`jettf.features.kernels`):
on one core ~1,500 jets/s for the whole default set at n = 50 and ~300 jets/s for
Pythia top jets (mean n 78), 31x and 46x fastjet-contrib on the same jets
(``benchmarks/bench_features.py``, ``benchmarks/README.md``).

Setting ``ecfg3_max_constituents=k`` (U_2, M_2, N_2) or ``ecf4_max_constituents=k``
(C_3, U_3, M_3, N_3) computes those members on the hardest ``k`` constituents
instead (z renormalised over the kept ones, i.e. fastjet-contrib's value on them),
and their columns are named ``..._k{k}`` so they are never mistaken for the paper's
observables. Truncation is not collinear safe (splitting a hard constituent
changes which ones are kept), and it is far off: on 400 Pythia top/QCD jets
(top-tagging sample, median 66 constituents), the median relative error against
the exact value is, for k = 40, U_2 6-14%, M_2 6-8%, N_2 3.5-6%, and for k = 20,
C_3 45% (beta 1) and 87% (beta 2), U_3 31-70%, M_3 18-43%, N_3 9-36%; C_3^(1)'s
single-feature top-vs-QCD AUC goes from 0.375 to 0.740 (its direction of
separation flips) and C_3^(2)'s from 0.201 to 0.597.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Optional, Tuple

from .efp import efp_graph_names

__all__ = ["FeatureSpec", "DEFINITIONS", "NSUB_AXES"]

#: N-subjettiness axes (fastjet-contrib AxesDefinition names) that are supported.
NSUB_AXES = ("KT_Axes", "WTA_KT_Axes", "OnePass_KT_Axes", "OnePass_WTA_KT_Axes")

#: Fixed definitions behind every spec; hashed into the fingerprint so a change of
#: definition changes every fingerprint.
DEFINITIONS = {
    "version": 2,  # 2: the default is exact (no truncation); truncated columns are named *_k{k}
    "angles": "Delta R^2 = Delta y^2 + Delta phi^2 with rapidity y (fastjet PseudoJet::squared_distance)",
    "ecf_measure": "fastjet-contrib EnergyCorrelator pt_R: z_i = pt_i / sum pt, theta_ij = Delta R_ij",
    "nsubjettiness": "fastjet-contrib NormalizedMeasure(beta, R0); exclusive kt axes (max_allowable_R) per axes name",
    "correlators": "every constituent unless a *_max_constituents field is set",
    "truncation": "only where ecfg3/ecf4_max_constituents is set: hardest-k constituents by pt (stable order), "
                  "z renormalised over the k kept, columns named *_k{k}",
    "degenerate": "0 where a feature needs more constituents than the jet has or a denominator vanishes",
    "efp": "energyflow EFPSet, measure 'hadr', kappa 1, normed, coordinates (pt, y, phi)",
}

_SERIES_INDICES = (1, 2, 3)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Global jet features and their parameters.

    Attributes:
        kinematics: include ``jet_pt, jet_eta, jet_phi, jet_mass, n_constituents``.
        tau_ratios: numerators ``N`` of the N-subjettiness ratios tau_N / tau_{N-1}
            (Thaler, Van Tilburg, arXiv:1011.2268), each in 2..9.
        tau_betas: angular exponents beta > 0 of tau_N.
        jet_radius: R0 of the normalized measure, tau_N = sum_k pt_k min_a dR_ka^beta
            / sum_k pt_k R0^beta (dimensionless).
        tau_axes: fastjet-contrib axes: ``"KT_Axes"`` (exclusive kt, E-scheme),
            ``"WTA_KT_Axes"`` (winner-take-all recombination), or the one-pass
            minimised ``"OnePass_KT_Axes"``, ``"OnePass_WTA_KT_Axes"``
            (arXiv:1108.2701); the one-pass ones are slower.
        c_series, c_betas: C_N^beta = ECFN(N-1) ECFN(N+1) / ECFN(N)^2, N in 1..3
            (Larkoski, Salam, Thaler, arXiv:1305.0007).
        d2_params: (alpha, beta) pairs of D_2^(alpha,beta) = ECFN(3,alpha) / ECFN(2,beta)^(3 alpha/beta)
            (Moult, Necib, Thaler, arXiv:1609.07483; alpha = beta is the original D_2).
        u_series, u_betas: U_n^beta = ECFG(1, n+1, beta), n in 1..3.
        m_series, m_betas: M_n^beta = ECFG(1, n+1, beta) / ECFG(1, n, beta), n in 1..3 (M_1 = ECFG(1,2)).
        n_series, n_betas: N_n^beta = ECFG(2, n+1, beta) / ECFG(1, n, beta)^2, n in 1..3 (N_1 = ECFG(1,2,2beta)).
        ecfg3_max_constituents: ``None`` (default): U_2, M_2 and N_2 on every constituent
            (exact; ~ n^3/6 triplets per jet). An int ``k`` is an approximation: those
            members are computed, all of their factors included, on the hardest ``k``
            constituents (pt-ordered, z renormalised) and named ``u2_b1_k{k}`` etc.
            Measured (k = 40, 400 Pythia top/QCD jets): median relative error against
            exact 3.5-14% (N_2 3.5-6.3%, M_2 5.7-8.2%, U_2 6.2-14.2%, growing with beta).
            C_1, C_2, D_2 and U_1 always use every constituent.
        ecf4_max_constituents: likewise for C_3, U_3, M_3 and N_3 (4-point correlators,
            ~ n^4/24 quadruplets per jet exact), named ``c3_b2_k{k}`` etc. when set.
            Measured (k = 20, same jets): median relative error 9-87% (C_3 44.8% / 86.6% at
            beta 1 / 2, U_3 30.6-69.5%, M_3 17.5-43.4%, N_3 9.4-36.3%); C_3^(1) flips its
            direction of top-vs-QCD separation. Not for physics use; see the module
            docstring.
        efp_dmax: include every energy-flow polynomial with 1 to ``efp_dmax`` edges
            (Komiske, Metodiev, Thaler, arXiv:1712.07124), at most 7; 0 (default)
            turns EFPs off. d <= 5 gives 101 EFPs (53 connected), d <= 7 gives 999.
        efp_beta: angular exponent of the EFP measure (theta_ij = Delta R_ij^beta).
    """

    kinematics: bool = True
    tau_ratios: Tuple[int, ...] = (2, 3, 4, 5, 6)
    tau_betas: Tuple[float, ...] = (0.5, 1.0, 2.0)
    jet_radius: float = 0.8
    tau_axes: str = "KT_Axes"
    c_series: Tuple[int, ...] = (1, 2, 3)
    c_betas: Tuple[float, ...] = (1.0, 2.0)
    d2_params: Tuple[Tuple[float, float], ...] = ((1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0))
    u_series: Tuple[int, ...] = (1, 2, 3)
    u_betas: Tuple[float, ...] = (0.5, 1.0, 2.0)
    m_series: Tuple[int, ...] = (2, 3)
    m_betas: Tuple[float, ...] = (1.0, 2.0)
    n_series: Tuple[int, ...] = (2, 3)
    n_betas: Tuple[float, ...] = (1.0, 2.0)
    ecfg3_max_constituents: Optional[int] = None
    ecf4_max_constituents: Optional[int] = None
    efp_dmax: int = 0
    efp_beta: float = 1.0

    def __post_init__(self):
        if not isinstance(self.kinematics, bool):
            raise ValueError(f"FeatureSpec.kinematics: expected True or False, got {self.kinematics!r}")
        _set(self, "tau_ratios", _ints("tau_ratios", self.tau_ratios, range(2, 10)))
        _set(self, "tau_betas", _betas("tau_betas", self.tau_betas))
        _set(self, "jet_radius", _positive("jet_radius", self.jet_radius))
        if self.tau_axes not in NSUB_AXES:
            raise ValueError(f"FeatureSpec.tau_axes: expected one of {list(NSUB_AXES)}, got {self.tau_axes!r}")
        for series in ("c", "u", "m", "n"):
            _set(self, f"{series}_series", _ints(f"{series}_series", getattr(self, f"{series}_series"), _SERIES_INDICES))
            _set(self, f"{series}_betas", _betas(f"{series}_betas", getattr(self, f"{series}_betas")))
        pairs = self.d2_params
        if not isinstance(pairs, (tuple, list)) or any(not isinstance(p, (tuple, list)) or len(p) != 2 for p in pairs):
            raise ValueError(f"FeatureSpec.d2_params: expected a sequence of (alpha, beta) pairs, got {pairs!r}")
        pairs = tuple((a, b) for a, b in zip(_betas("d2_params", [p[0] for p in pairs]), _betas("d2_params", [p[1] for p in pairs])))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"FeatureSpec.d2_params: duplicate (alpha, beta) pairs in {list(pairs)}")
        _set(self, "d2_params", pairs)
        for name in ("ecfg3_max_constituents", "ecf4_max_constituents"):
            k = getattr(self, name)
            if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 4):
                raise ValueError(f"FeatureSpec.{name}: expected None or an int >= 4, got {k!r}")
        d = self.efp_dmax
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 7:
            raise ValueError(f"FeatureSpec.efp_dmax: expected an int in 0..7 (0 = no EFPs), got {d!r}")
        _set(self, "efp_beta", _positive("efp_beta", self.efp_beta))

    # ------------------------------------------------------------------ names
    def names(self) -> list:
        """Feature names in column order (see the module docstring for the scheme)."""
        return [name for name, _ in self._columns()]

    def min_constituents(self) -> dict:
        """``{name: n}``: a jet needs at least ``n`` constituents for the feature to be
        non-trivial; below that its value is 0 (see :func:`jettf.features.feature_validity`)."""
        return dict(self._columns())

    def _columns(self):
        cols = []
        if self.kinematics:
            cols += [(n, 0) for n in ("jet_pt", "jet_eta", "jet_phi", "jet_mass", "n_constituents")]
        # tau_N / tau_{N-1} is non-trivial from N + 1 constituents on (tau_N = 0 for n <= N).
        cols += [(f"tau{n}{n - 1}_b{_fmt(b)}", n + 1) for n in self.tau_ratios for b in self.tau_betas]
        cols += self._correlator_columns()
        if self.efp_dmax:
            cols += [(name, 1) for name in efp_graph_names(self.efp_dmax)]
        return cols

    def _correlator_columns(self):
        """``(name, min constituents)`` of the C, D2, U, M, N members, in column order."""
        # A series member is as demanding as its highest-point correlator; a truncated
        # member (see the class docstring) says so with the suffix _k{k}.
        cols = [(f"c{n}_b{_fmt(b)}{self._suffix('c', n)}", n + 1) for n in self.c_series for b in self.c_betas]
        cols += [(f"d2_a{_fmt(a)}_b{_fmt(b)}", 3) for a, b in self.d2_params]
        for series in ("u", "m", "n"):
            cols += [
                (f"{series}{n}_b{_fmt(b)}{self._suffix(series, n)}", n + 1)
                for n in getattr(self, f"{series}_series")
                for b in getattr(self, f"{series}_betas")
            ]
        return cols

    def _correlator_names(self) -> list:
        return [name for name, _ in self._correlator_columns()]

    def _suffix(self, series: str, n: int) -> str:
        """``"_k{k}"`` for a member computed on the hardest k constituents, else ``""``."""
        if n == 3:
            k = self.ecf4_max_constituents
        elif n == 2 and series != "c":
            k = self.ecfg3_max_constituents
        else:
            k = None
        return "" if k is None else f"_k{k}"

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: ([list(p) for p in v] if k == "d2_params" else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        """Inverse of :meth:`to_dict`; missing fields take their defaults."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"FeatureSpec.from_dict: unknown field(s) {unknown}; expected fields from {names}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FeatureSpec":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"FeatureSpec.from_json: not valid JSON ({err})") from None
        if not isinstance(d, dict):
            raise ValueError(f"FeatureSpec.from_json: expected a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)

    def fingerprint(self) -> str:
        """16 hex digits identifying the features this spec computes (spec + fixed definitions)."""
        payload = json.dumps({"spec": self.to_dict(), "definitions": DEFINITIONS}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # ---------------------------------------------------------------- presets
    @classmethod
    def effnet_s(cls) -> "FeatureSpec":
        """The EffNet-S global features (002, section 2.3): the default spec."""
        return cls()


# --------------------------------------------------------------------- helpers
def _set(spec, name, value):
    object.__setattr__(spec, name, value)


def _fmt(x: float) -> str:
    """Shortest decimal of ``x`` with ``.`` -> ``p`` (1.0 -> '1', 0.5 -> '0p5')."""
    text = repr(float(x))
    return (text[:-2] if text.endswith(".0") else text).replace(".", "p")


def _ints(field, values, allowed) -> tuple:
    if isinstance(values, (int, str)) or not isinstance(values, (tuple, list)):
        raise ValueError(f"FeatureSpec.{field}: expected a sequence of ints, got {values!r}")
    allowed = tuple(allowed)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v not in allowed]
    if bad:
        raise ValueError(f"FeatureSpec.{field}: {bad} not allowed; expected ints in {allowed[0]}..{allowed[-1]}")
    if len(set(values)) != len(values):
        raise ValueError(f"FeatureSpec.{field}: duplicate entries in {list(values)}")
    return tuple(values)


def _betas(field, values) -> tuple:
    if isinstance(values, (int, float, str)) or not isinstance(values, (tuple, list)):
        raise ValueError(f"FeatureSpec.{field}: expected a sequence of exponents, got {values!r}")
    out = tuple(_positive(field, v) for v in values)
    if field != "d2_params" and len(set(out)) != len(out):
        raise ValueError(f"FeatureSpec.{field}: duplicate entries in {list(out)}")
    return out


def _positive(field, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10:
        raise ValueError(f"FeatureSpec.{field}: expected a number in (0, 10], got {value!r}")
    if "e" in repr(float(value)):
        raise ValueError(f"FeatureSpec.{field}: {value!r} has no short decimal form for feature names")
    return float(value)
