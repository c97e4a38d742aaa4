"""Hyperparameter sweeps for jettf's taggers with keras-tuner: ``python -m tuning.search``.

- :mod:`tuning.space`: search spaces as data (``tuning/spaces/*.yaml``), validated on load;
- :mod:`tuning.hypermodels`: a space as a keras-tuner ``HyperModel`` that returns trainer-config overrides;
- :mod:`tuning.tuner`: :class:`JetTuner`, whose trials train with :func:`jettf.training.trainer.fit_validate`,
  and :func:`make_oracle` (Bayesian optimization, random search, Hyperband);
- :mod:`tuning.results`: the trials table, ``best_config.json`` (for ``python -m jettf.train --config``),
  the objective plot;
- :mod:`tuning.search`: the command line; :mod:`tuning.distributed`: chief/worker sweeps.

Shipped spaces: ``effnet_s`` (002: phi -13..-9, crop, dropout, learning rate, global-feature MLP),
``ensemble`` (000: fusion width, dropout, learning rate, frozen backbone layers, branches),
``lenet`` (002's benchmark CNN) and ``calo_cnn`` (004's Table 3.3 ranges).
"""

from tuning.space import SearchSpace, available_spaces, load_space

__all__ = ["SearchSpace", "available_spaces", "load_space"]
