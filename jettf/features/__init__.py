"""Global jet features: jet four-momentum, N-subjettiness ratios, energy-correlation series, EFPs.

``compute_features(batch, spec) -> (values [N, F] float32, names)`` computes the
features a :class:`FeatureSpec` lists (default: the EffNet-S set of 002, section
2.3) for a :class:`jettf.jets.JetBatch`, vectorized over the batch: one fastjet
call clusters every jet for the N-subjettiness axes, and the correlators are
numpy sums over groups of jets of similar size. Values agree with
fastjet-contrib (Nsubjettiness, EnergyCorrelator) on the constituents they use;
see :mod:`jettf.features.ecf` for which correlators are truncated to the
hardest constituents. ``feature_validity`` tells which entries are defined.
"""

from .compute import DegenerateJetWarning, compute_features, feature_validity
from .spec import FeatureSpec

__all__ = ["FeatureSpec", "compute_features", "feature_validity", "DegenerateJetWarning"]
