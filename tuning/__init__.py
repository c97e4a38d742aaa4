"""Hyperparameter sweeps for jettf's taggers with keras-tuner: ``python -m tuning.search``.

- :mod:`tuning.hypermodels`: one keras-tuner hypermodel per model (``effnet_s``, ``ensemble``, ``lenet``,
  ``calo_cnn``); ``build(hp)`` declares the space and returns the TrainConfig settings it stands for;
- :mod:`tuning.tuner`: :class:`~tuning.tuner.JetTuner`, whose trials train with
  :func:`jettf.training.trainer.fit_validate`, and the oracles (Bayesian optimization, random search,
  Hyperband) with exact resume;
- :mod:`tuning.results`: the trials table, ``best_config.json`` (for ``python -m jettf.train --config``),
  the objective plot;
- :mod:`tuning.search`: the command line; :mod:`tuning.distributed`: chief/worker sweeps.

Importing this package loads nothing heavy, so ``python -m tuning.search --help`` answers at once.
"""
