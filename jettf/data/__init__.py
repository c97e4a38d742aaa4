"""Datasets for training: build them (TFDS), stream them (tf.data), cut them (K-fold, rounds).

Build (command line or Python)::

    python -m jettf.data build top_tagging_images/quick --data-dir DATA [--manual-dir M] [--n-jets N]
    info = jettf.data.build("top_tagging_images/quick", data_dir="DATA")        # -> JetDatasetInfo

Afterwards ``tfds.load("top_tagging_images/quick", data_dir="DATA")`` works in
any process after ``import tfds_builders``. Without ``--manual-dir`` the
builder generates an equivalent sample with Pythia and says so; ``--n-jets N``
builds the config ``<config>-nN`` (its own directory, so builds with different
numbers of jets never mix).

Public API
----------
``build(name, data_dir=None, manual_dir=None, n_jets=None, *, overwrite=False, beam_runner=None, ...)``
    Build or reuse a dataset; returns :class:`JetDatasetInfo`.
``load_info(name, data_dir=None) -> JetDatasetInfo``
    A built dataset: ``image_spec``, ``feature_spec``, ``class_names``,
    ``feature_names``, ``pixel_mean``/``pixel_std`` images (training split),
    ``splits`` ({split: jets}), ``source`` (public files + sha256, or generator
    settings + seed), ``metadata``, ``fingerprint()``, ``summary()``.
``make_dataset(name_or_info, split="train", *, data_dir, batch_size, inputs=("image",), densify,
classes, label_format, training, shuffle, seed, deterministic, cache, repeat, ...) -> tf.data.Dataset``
    ``(inputs_dict, label)`` batches: records parsed with TFDS' feature spec and batched; images
    stay sparse for the model's :class:`jettf.images.ImagePreparation` layer, or are densified
    here by that same layer (``densify=True``; :func:`densify_on_host` is the rule).
``kfold_splits(name_or_info, k=5, seed=0, split="train") -> [Fold]``
    Stratified, disjoint, seed-reproducible folds as TFDS split strings
    (``fold.train``, ``fold.validation``).
``RoundSchedule(n_examples, round_size=300_000, patience=10, sweeps=1)`` / ``RoundSchedule.from_info(info)``
    002's rounds: ``current()``, ``end_epoch(val_loss)``, ``dataset(info, **kw)``,
    ``state_dict()``/``load_state_dict()`` (JSON) to resume mid-schedule.
``num_examples(info, split, classes=None)``
    Jets per pass, for steps per epoch.

Builders (``import tfds_builders``), ``NAME/CONFIG``:

- ``jetnet_images``: ``default`` (299x299 pT_rel, 170k jets/class, 000), ``pt_128``, ``pt_64``, ``quick`` (32x32, 1000/class).
- ``top_tagging_images``: ``effnet_s_35`` (35x35x3; 002 crops to 28), ``effnet_s_40`` (40x40x3; 002 crops to 32; default), ``quick`` (40x40x3, 300/class).
- ``quark_gluon_images``: ``pt_33`` (default), ``cnm_33`` (charged pt, neutral pt, charged multiplicity), ``quick`` (300/class).
"""

from jettf.data.building import build, full_name
from jettf.data.info import JetDatasetInfo, load_info
from jettf.data.kfold import Fold, kfold_splits
from jettf.data.info import dataset_names, default_data_dir
from jettf.data.pipeline import INPUT_KEYS, SPARSE_KEYS, densify_on_host, make_dataset, num_examples
from jettf.data.rounds import Round, RoundSchedule

__all__ = [
    "build",
    "full_name",
    "load_info",
    "default_data_dir",
    "dataset_names",
    "JetDatasetInfo",
    "make_dataset",
    "densify_on_host",
    "num_examples",
    "kfold_splits",
    "Fold",
    "RoundSchedule",
    "Round",
    "INPUT_KEYS",
    "SPARSE_KEYS",
]
