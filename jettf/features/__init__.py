"""Global jet features: jet four-momentum, N-subjettiness ratios, energy-correlation series, EFPs.

``compute_features(batch, spec) -> (values [N, F] float32, names)`` computes the
features a :class:`FeatureSpec` lists (default: the EffNet-S set of 002, section
2.3, exact: every observable on all constituents) for a :class:`jettf.jets.JetBatch`,
vectorized over the batch: one fastjet call clusters every jet for the
N-subjettiness axes, ECFN(2) and ECFN(3) are batched matrix products, and the
generalized 3- and 4-point correlators (and ECFN(4)) are compiled numba loops over
every triplet / quadruplet (:mod:`jettf.features.kernels`). Truncating the 3- and
4-point members to the hardest k constituents is an explicit, differently named
(``_k{k}``) option only; see :mod:`jettf.features.spec`. ``feature_validity``
tells which entries are defined.

Validation (``tests/test_features.py``, rtol 1e-5 on the float32 output):

- every N-subjettiness and C, D2, U, M, N column of the default spec against
  fastjet-contrib (Nsubjettiness with NormalizedMeasure and the spec's axes;
  EnergyCorrelator c1, c2, cseries, generalizedd2, useries, mseries, nseries; through
  ``fastjet==3.5.2.0``) on all constituents, on random three-prong jets of up to 64
  constituents and on 48 Pythia top/QCD jets of 28-110 constituents; a separate
  test fails if the default C_3, U_3, M_3, N_3, U_2, M_2, N_2 were computed on the
  hardest 20 / 40 (Pythia jets of 60+ constituents);
- other parameters (WTA and one-pass axes, other R0 and betas, M_1, N_1, truncated
  ``_k{k}`` members against fastjet-contrib on the hardest k);
- ECFN and ECFG sums against explicit sums over ``itertools.combinations`` (numpy);
- EFPs against energyflow's ``EFPSet``; tau_N of symmetric configurations against
  closed forms.

``benchmarks/bench_features.py`` repeats the fastjet-contrib comparison for the whole
default set at benchmark size (largest relative difference ~6e-8, the float32
rounding). Inputs are converted to (px, py, pz, E) in float64 exactly as passed to
fastjet: U_3 of nearly collinear pairs moves by ~1e-5 relative if they are built
with float32 trigonometry instead.
"""

from .compute import DegenerateJetWarning, compute_features, feature_validity
from .spec import FeatureSpec

__all__ = ["FeatureSpec", "compute_features", "feature_validity", "DegenerateJetWarning"]
