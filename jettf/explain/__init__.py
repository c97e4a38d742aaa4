"""Explaining what a tagger learned: Grad-CAM, average / difference / correlation images, decision ordering.

* :mod:`.gradcam`: Grad-CAM for any convolutional zoo model, one map per branch of the ensemble (000 sec. 4.2.2).
  TensorFlow and JAX backends.
* :mod:`.images`: class-average images, difference images, Pearson maps pixel vs network output (001 sec. 6).
  numpy only.
* :mod:`.ado`: average decision ordering, exact over all pairs in O(N log N), and disagreement sets (004 sec. 3.8,
  4.5). numpy only.
* :mod:`.search`: EFP candidates (energyflow), 004's small HL network (Keras 3), the greedy guided search and its
  table (004 Tables 3.2, 4.1).
* :mod:`.plots`: PNG figures (eta along x, phi along y, colour bars).
* ``python -m jettf.explain RUN_DIR``: all of the above for a training run.

Names are imported lazily (``from jettf.explain import pearson_map`` does not import Keras). The ADO function
is ``jettf.explain.ado.ado`` (``jettf.explain.ado`` is its module).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "decision_ordering": ".ado",
    "disagreement_pairs": ".ado",
    "random_pairs": ".ado",
    "kendall_s": ".ado",
    "Disagreement": ".ado",
    "grad_cam": ".gradcam",
    "GradCAM": ".gradcam",
    "find_conv_layers": ".gradcam",
    "class_averages": ".images",
    "difference_image": ".images",
    "pearson_map": ".images",
    "Observables": ".search",
    "EFPGrid": ".search",
    "efp_observables": ".search",
    "jet_observables": ".search",
    "HLNetworkConfig": ".search",
    "train_hl_network": ".search",
    "guided_search": ".search",
    "SearchResult": ".search",
    "plot_pearson_map": ".plots",
    "plot_gradcam": ".plots",
    "plot_image_map": ".plots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
