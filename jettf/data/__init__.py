"""Datasets for training: build them (TFDS), stream them (tf.data), cut them (K-fold, rounds).

Build (command line or Python)::

    python -m jettf.data build top_tagging_images/quick --data-dir DATA [--manual-dir M] [--n-jets N]
    info = jettf.data.build("top_tagging_images/quick", data_dir="DATA")        # -> JetDatasetInfo

Afterwards ``tfds.load("top_tagging_images/quick", data_dir="DATA")`` works in
any process after ``import tfds_builders``. Without ``--manual-dir`` the
builder generates an equivalent sample with Pythia and says so; ``--n-jets N``
builds the config ``<config>-nN`` (its own directory, so builds with different
numbers of jets never mix).

Past one process (``pip install 'jettf[beam]'``; :mod:`jettf.data.distributed`)::

    python -m jettf.data build NAME --beam --beam-runner dask --beam-workers 8        # a Dask LocalCluster here
    python -m jettf.data build NAME --beam --beam-runner dask --dask-address tcp://SCHEDULER:8786
    python -m jettf.data build NAME --beam --beam-workers 4        # Beam's FnApiRunner, 4 processes (no Prism)

The Dask build runs the Pythia shards, the plan's reading pass and the shard
tasks (read, render, exact features) on the cluster and writes the records
here, byte-identical to a single-process build; a real cluster needs jettf on
its workers and DATA (and M) on a filesystem they share. The whole TFDS Beam
pipeline runs on Dataflow, Flink or Spark with their usual options::

    python -m jettf.data build NAME --data-dir gs://BUCKET/data --beam --beam-runner DataflowRunner \
        --beam-options='--project=P --region=R --temp_location=gs://BUCKET/tmp --sdk_container_image=IMAGE'
    python -m jettf.data build NAME --beam --beam-runner FlinkRunner \
        --beam-options='--flink_master=HOST:8081 --environment_type=DOCKER --environment_config=IMAGE'
    python -m jettf.data build NAME --beam --beam-runner SparkRunner \
        --beam-options='--spark_master_url=spark://HOST:7077 --environment_type=DOCKER --environment_config=IMAGE'

(``IMAGE``: a Beam SDK container with jettf installed; the public files must
be readable at the same path on every worker, e.g. a GCS FUSE or NFS mount;
Flink and Spark start a job server, which Beam downloads the first time.
These runners cannot be reached from the development machines: the options
are Beam's own, not tested here.)

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
- ``cms_quark_gluon_images``: ``jet`` (003's 125x125 tracks/ECAL/HCAL views, default), ``gen`` (generator-level EM/Had
  views of generated files), ``quick`` (150/class): pre-rendered images stored as read (``records.ImageRows``).
- ``electron_images``: ``et`` (004's 31x31 ECAL E_T image and, as the second image ``hcal``, the 8x8 HCAL towers;
  the seven expert features + mass; weights; cells; default), ``energy`` (the same in energy), ``quick`` (600/class).
- ``muon_images``: ``image`` (004's 32x32 E_T image around the muon, <mu> = 50; the 18 isolation cones; weights;
  cells; default), ``quick`` (600/class). Both: images stored as the files hold them (``records.ImageRows``).
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
