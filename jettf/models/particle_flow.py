"""Particle Flow and Energy Flow Networks (Komiske, Metodiev, Thaler 2019: Deep Sets for particle jets).

Particle-level baselines on the same jets as the image models (energyflow's own PFN/EFN classes are tf_keras
and cannot be mixed with Keras 3). Input ``constituents`` ``[N, M, 4]`` = (pt [GeV], eta, phi [rad], energy
[GeV]) zero-padded; a particle is real when pt > 0. M may be None (variable length).

* EFN:  F( sum_i z_i Phi(eta_i - eta_c, phi_i - phi_c) ), z_i = pT_i / sum_j pT_j (IRC safe). Angles are
  relative to the pT-weighted centroid (eta_c, phi_c); see ``layers.ConstituentFeatures``.
* PFN:  F( sum_i mask_i Phi(p_i) ) with per-particle features ``layers.PFN_FEATURES`` (log pT, log E,
  log pT fraction, log E fraction, delta eta, delta phi, delta R w.r.t. the centroid: ParticleNet's set),
  shifted and scaled to O(1) by the fixed ``layers.PFN_FEATURE_SCALING``; the sum is masked. With
  ``particle_features="linear"`` the features are ``layers.PFN_LINEAR_FEATURES`` (pT, delta eta, delta phi)
  standardized by a ``Normalization`` layer ``"constituents_norm"`` (004 App. A.1.2's PFN on calorimeter
  pixels: "subtracting the mean and dividing by the variance"): fixed from ``particle_mean`` /
  ``particle_std``, or adapted to the real particles of the training set by
  ``jettf.models.adapt_normalization(model, constituents=...)``. On the pixels of 004's muon image, whose E_T run
  from 1e-9 GeV (area fractions of a cell) to tens of GeV, the log features put the many tiny pixels at about
  -15 standard units (benchmarks/README.md, section 004).

Phi is a stack of Dense layers applied per particle (Dense acts on the last axis of [N, M, K]); F is the shared
MLP head, which also takes the standardized global features when ``n_global_features > 0``. Defaults follow
energyflow's: Phi sizes (100, 100, 256) (latent dimension 256), F sizes (100, 100, 100), ReLU, Glorot-normal
(004 App. A.1.2 uses 3 + 3 layers of 100 for its PFN).

``center="origin"`` takes the angles as given instead of from the centroid (``ConstituentFeatures``' option):
for objects whose position is the origin of the inputs, e.g. 004's calorimeter cells around a muon.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from . import register
from .heads import PARTICLE_NORM_NAME, assemble, classifier_head, make_inputs, standardization
from .layers import ConstituentFeatures, WeightedSum

__all__ = ["build_pfn", "build_efn"]


def _deep_sets(
    mode: str,
    n_classes: int,
    input_shape,
    n_global_features: int,
    *,
    phi_sizes: Sequence[int],
    f_sizes: Sequence[int],
    activation: str,
    f_dropout: float,
    kernel_initializer: str,
    center: str,
    global_mean,
    global_std,
    class_names,
    metadata,
    name,
    particle_features: str = "log",
    particle_mean=None,
    particle_std=None,
):
    if input_shape is None:
        input_shape = (None, 4)
    inputs = make_inputs(input_shape, n_global_features, kind="constituents")
    weights, x = ConstituentFeatures(mode, center=center, features=particle_features,
                                     name=f"{mode}_inputs")(inputs["constituents"])
    if particle_features == "linear":
        # Padded particles become -mean/std here; the masked sum below gives them weight 0.
        x = standardization(x, particle_mean, particle_std, name=PARTICLE_NORM_NAME, what="particle")
    elif particle_mean is not None or particle_std is not None:
        raise ValueError("particle_mean/particle_std standardize particle_features='linear' only")
    for i, u in enumerate(phi_sizes, start=1):
        x = keras.layers.Dense(int(u), activation=activation, kernel_initializer=kernel_initializer, name=f"phi_{i}")(x)
    latent = WeightedSum(name="masked_sum" if mode == "pfn" else "energy_weighted_sum")([x, weights])
    probs = classifier_head(
        latent,
        inputs,
        n_classes,
        mlp_units=f_sizes,
        mlp_activation=activation,
        dropout=f_dropout,
        mlp_prefix="f",
        global_mean=global_mean,
        global_std=global_std,
        class_names=class_names,
        metadata=metadata,
        kernel_initializer=kernel_initializer,
    )
    return assemble(inputs, probs, name or mode)


def build_pfn(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    phi_sizes: Sequence[int] = (100, 100, 256),
    f_sizes: Sequence[int] = (100, 100, 100),
    activation: str = "relu",
    f_dropout: float = 0.0,
    kernel_initializer: str = "glorot_normal",
    center: str = "centroid",
    particle_features: str = "log",
    particle_mean=None,
    particle_std=None,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """Particle Flow Network on ``constituents`` (default input (None, 4)). Options: ``phi_sizes``,
    ``f_sizes``, ``activation``, ``f_dropout`` (after each F layer), ``kernel_initializer``, ``center``
    (``"centroid"``: angles from the pT-weighted centroid; ``"origin"``: as given), ``particle_features``
    (``"log"``: ParticleNet's scaled log set; ``"linear"``: standardized pT, delta eta, delta phi, with
    ``particle_mean`` / ``particle_std`` (3 values each) or adapted later; module docstring)."""
    return _deep_sets(
        "pfn", n_classes, input_shape, n_global_features, phi_sizes=phi_sizes, f_sizes=f_sizes,
        activation=activation, f_dropout=f_dropout, kernel_initializer=kernel_initializer, center=center,
        global_mean=global_mean, global_std=global_std, class_names=class_names, metadata=metadata, name=name,
        particle_features=particle_features, particle_mean=particle_mean, particle_std=particle_std,
    )  # fmt: skip


def build_efn(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    phi_sizes: Sequence[int] = (100, 100, 256),
    f_sizes: Sequence[int] = (100, 100, 100),
    activation: str = "relu",
    f_dropout: float = 0.0,
    kernel_initializer: str = "glorot_normal",
    center: str = "centroid",
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """Energy Flow Network on ``constituents`` (default input (None, 4)); same options as ``build_pfn``."""
    return _deep_sets(
        "efn", n_classes, input_shape, n_global_features, phi_sizes=phi_sizes, f_sizes=f_sizes,
        activation=activation, f_dropout=f_dropout, kernel_initializer=kernel_initializer, center=center,
        global_mean=global_mean, global_std=global_std, class_names=class_names, metadata=metadata, name=name,
    )  # fmt: skip


register(
    "pfn",
    build_pfn,
    input_kind="constituents",
    paper="Komiske, Metodiev, Thaler 2019 (004 baseline)",
    description="Particle Flow Network: masked sum of per-particle Phi, then F",
)
register(
    "efn",
    build_efn,
    input_kind="constituents",
    paper="Komiske, Metodiev, Thaler 2019 (004 baseline)",
    description="Energy Flow Network: pT-fraction-weighted sum of Phi(delta eta, delta phi), then F",
)
