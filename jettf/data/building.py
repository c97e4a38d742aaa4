"""Build a jettf dataset: :func:`build` (used by ``python -m jettf.data build`` and the trainer)."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Optional

from jettf.data.builder_base import _say
from jettf.data.info import JetDatasetInfo, builder_class, default_data_dir, split_dataset_name

__all__ = ["build", "resolve_config", "full_name"]


def resolve_config(name: str, n_jets: Optional[int] = None):
    """``(builder class, config)`` for ``"NAME[/CONFIG]"``; ``n_jets`` makes a ``<config>-n<N>`` config."""
    dataset, config_name = split_dataset_name(name)
    cls = builder_class(dataset)
    config_name = config_name or cls.DEFAULT_BUILDER_CONFIG_NAME
    base_name, _, n_text = config_name.partition("-n")
    if base_name not in cls.builder_configs:
        raise ValueError(f"{dataset}: unknown config {config_name!r}; choose from {sorted(cls.builder_configs)} "
                         "(optionally with -n<jets per class>)")
    config = cls.builder_configs[base_name]
    if n_text:
        if not n_text.isdigit():
            raise ValueError(f"{dataset}/{config_name}: expected <config>-n<jets per class>, e.g. {base_name}-n500")
        if n_jets is not None and int(n_text) != n_jets:
            raise ValueError(f"{dataset}/{config_name} names {n_text} jets but n_jets={n_jets}")
        n_jets = int(n_text)
    if n_jets is not None and n_jets != config.n_jets:
        config = config.with_n_jets(n_jets)
    return cls, config


def full_name(name: str, n_jets: Optional[int] = None) -> str:
    """``NAME/CONFIG`` of the dataset :func:`build` makes for ``name`` and ``n_jets`` (``quick`` -> ``quick-n500``)."""
    cls, config = resolve_config(name, n_jets)
    return f"{cls.name}/{config.name}"


class _NoCustomConfigWarning(logging.Filter):
    """TFDS warns with the whole config whenever a ``-n<N>`` config is used; that is expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # Expected while a dataset is being built for the first time: its folder has no dataset_info.json yet.
        return "Using custom data configuration" not in message and "has no dataset_info.json" not in message


@contextlib.contextmanager
def _quiet_custom_config():
    absl = logging.getLogger("absl")
    quiet = _NoCustomConfigWarning()
    absl.addFilter(quiet)
    try:
        yield
    finally:
        absl.removeFilter(quiet)


def build(name: str, data_dir: Optional[str] = None, manual_dir: Optional[str] = None,
          n_jets: Optional[int] = None, *, download_dir: Optional[str] = None, overwrite: bool = False,
          beam_runner=None, beam_options=None, workers: int = 1) -> JetDatasetInfo:
    """Build ``"NAME[/CONFIG]"`` into ``data_dir`` (or reuse it) and return its :class:`JetDatasetInfo`.

    Args:
        name: e.g. ``"top_tagging_images/quick"``; without a config, the builder's default.
        data_dir: TFDS data directory (default: :func:`jettf.data.default_data_dir`, ``./data``).
        manual_dir: directory holding the public files. Without one, a sample is generated
            with Pythia (unless the files are in ``<download_dir>/manual``).
        n_jets: jets per class, overriding the config's; the dataset is then the config
            ``<config>-n<n_jets>``, so it has its own directory and identity.
        download_dir: where generated samples are cached (default ``<data_dir>/downloads``).
        overwrite: rebuild even if the dataset exists.
        beam_runner, beam_options: build with Apache Beam: ``"DirectRunner"`` (Beam's in-process
            FnApiRunner, never the Prism download; ``direct_num_workers`` processes with
            ``direct_running_mode="multi_processing"``), ``"dask"`` (the shard stage on Beam's
            DaskRunner: a LocalCluster of ``workers`` processes, or the scheduler at the options'
            ``dask_client_address``; same records, byte for byte), or any Beam runner name or object
            with its ``PipelineOptions`` (Dataflow, Flink, Spark: :mod:`jettf.data.distributed`).
        workers: processes for Pythia generation and for making examples (without Beam), and the
            LocalCluster's worker processes with ``beam_runner="dask"``.

    An existing build is reused only if it matches: same specs, and built from the
    public files when ``manual_dir`` is given; otherwise this raises and says to
    pass ``overwrite=True``.
    """
    with _quiet_custom_config():
        return _build(name, data_dir, manual_dir, n_jets, download_dir, overwrite, beam_runner, beam_options,
                      workers)


def _build(name, data_dir, manual_dir, n_jets, download_dir, overwrite, beam_runner, beam_options, workers):
    import tensorflow_datasets as tfds

    cls, config = resolve_config(name, n_jets)
    data_dir = str(Path(data_dir or default_data_dir()).resolve())  # relative record paths would resolve twice
    builder = cls(config=config, data_dir=data_dir)
    builder.workers = workers
    full = f"{cls.name}/{config.name}"
    if builder.is_prepared() and not overwrite:
        info = JetDatasetInfo(builder)
        meta = info.metadata
        expected = builder._static_metadata()
        for key in ("image_spec_fingerprint", "feature_spec_fingerprint", "max_constituents", "min_constituents"):
            if meta.get(key) != expected.get(key):
                raise ValueError(f"{full} in {builder.data_dir} was built with a different {key} "
                                 f"({meta.get(key)} vs {expected.get(key)} in the code): bump the builder's VERSION "
                                 "or rebuild with overwrite=True (--overwrite)")
        from_manual = info.source.get("kind") == "public" or info.source.get("manual_dir")
        if manual_dir is not None and not from_manual:
            raise ValueError(f"{full} in {builder.data_dir} was built from a {info.source.get('kind')} sample; "
                             f"rebuild with overwrite=True (--overwrite) to use the files in {manual_dir}")
        _say(f"{full}: already built in {builder.data_dir}; reusing it ({info.source.get('kind')} source)")
        return info
    from jettf.data import distributed

    shards = contextlib.nullcontext()
    if distributed.is_dask(beam_runner):  # Beam's DaskRunner runs the shard stage; TFDS writes the records here
        address, local_workers = distributed.dask_settings(beam_options, workers)
        shards = builder.shard_runner = distributed.DaskShards(address, local_workers, scratch_root=data_dir)
        beam_runner = beam_options = None
    elif beam_runner is not None:
        beam_runner, beam_options = distributed.resolve_runner(beam_runner, beam_options)
    download_config = tfds.download.DownloadConfig(
        manual_dir=manual_dir,
        download_mode=(tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite
                       else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS),
        beam_runner=beam_runner,
        beam_options=beam_options,
        try_download_gcs=False,  # offline-first: never ask TFDS' bucket (it times out without network)
    )
    start = time.perf_counter()
    with shards:
        if isinstance(shards, distributed.DaskShards):
            _say(f"{full}: shard stage on {shards.description}")
        builder.download_and_prepare(download_dir=download_dir, download_config=download_config)
        if isinstance(shards, distributed.DaskShards) and shards.task_stats:
            _say(f"{full}: {shards.summary()}")
    info = JetDatasetInfo(cls(config=config, data_dir=data_dir))
    _say(f"{full}: built in {time.perf_counter() - start:.1f} s")
    return info
