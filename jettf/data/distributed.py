"""Dataset builds past one process: Beam runners chosen explicitly, and Beam's DaskRunner.

:func:`jettf.data.build` (``python -m jettf.data build NAME --beam [--beam-runner R]``) prepares a
dataset with Apache Beam in one of three ways:

* **Local Beam** (``DirectRunner``, the default): Beam's in-process ``FnApiRunner`` is chosen
  explicitly, in this process or in ``direct_num_workers`` SDK worker processes
  (``direct_running_mode="multi_processing"``, ``--beam-workers N``). Beam's default
  ``DirectRunner`` would first try to download the Prism runner binary, which fails or
  hangs offline; this never does.
* **Dask** (``--beam-runner dask``; ``pip install 'apache-beam[dask]'``): everything heavy runs
  as Beam pipelines ``Create(tasks) | Map(run task)`` on Beam's ``DaskRunner``, one Dask
  partition per task, on a ``LocalCluster`` of ``workers`` processes or on the scheduler at
  ``dask_client_address`` (``--dask-address``): the Pythia shards of a generated sample, the
  plan's reading pass (labels and constituent counts per row range), and the shard stage
  (read a row range, render the sparse images, compute the exact global features, make the
  examples). Each shard task's examples are written to a scratch file under the data
  directory; this process streams them in task order into TFDS' own writer (and then takes
  the statistics pass over the records), so the records are the single-process build's, byte
  for byte. (TFDS' Beam writer itself does not run on Beam 2.77's DaskRunner: that
  runner computes only the last transform of a pipeline and evaluates side inputs inside
  tasks, and TFDS' shard assignment then fails with ``IndexError`` in ``_assign_shard``.)
  On a real cluster the workers need jettf installed and the data directory (and the
  manual directory) on a filesystem they share with this process.
* **Any other Beam runner** (``DataflowRunner``, ``FlinkRunner``, ``SparkRunner``,
  ``PortableRunner``, ``PrismRunner``): the whole TFDS Beam pipeline (shard stage and writer)
  runs there, with the pipeline options the user passes (``--beam-options='...'``), e.g.
  ``--project``, ``--region``, ``--temp_location`` and a ``gs://`` data directory for Dataflow, or
  ``--flink_master`` / ``--spark_master_url`` and ``--environment_type`` for Flink and Spark
  (examples in :mod:`jettf.data`; the workers read the public files by path, so they must see
  them at the same path). Not reachable from the development machines, so not tested here.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

__all__ = ["DIRECT_NAMES", "DASK_NAMES", "is_dask", "local_runner", "resolve_runner", "DaskShards"]

#: Runner names that mean "Beam on this machine" (Beam's in-process FnApiRunner, never Prism).
DIRECT_NAMES = ("direct", "directrunner", "fnapi", "fnapirunner")
#: Runner names that mean Beam's DaskRunner.
DASK_NAMES = ("dask", "daskrunner")


def is_dask(runner) -> bool:
    """``runner`` (a name or a Beam runner object) is Beam's DaskRunner."""
    if runner is None:
        return False
    if isinstance(runner, str):
        return runner.lower() in DASK_NAMES
    return type(runner).__name__ == "DaskRunner"


def local_runner():
    """Beam's in-process ``FnApiRunner``: honours ``direct_num_workers`` / ``direct_running_mode`` and never
    tries to download Prism (which Beam's default ``DirectRunner`` does first)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def resolve_runner(runner, options):
    """``(runner object or None, options)`` for TFDS' Beam pipeline (not for Dask: see :class:`DaskShards`).

    ``"DirectRunner"`` (or a ``DirectRunner()`` object) becomes :func:`local_runner`; another
    name goes into the options' ``--runner`` (Beam resolves it: ``DataflowRunner``,
    ``FlinkRunner``, ``SparkRunner``, ``PortableRunner``, ``PrismRunner``); a runner object is
    used as it is.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    if runner is None:
        return None, options
    if isinstance(runner, str):
        if runner.lower() in DIRECT_NAMES:
            return local_runner(), options
        options = PipelineOptions() if options is None else options
        options.view_as(StandardOptions).runner = runner
        return None, options
    if type(runner).__name__ in ("SwitchingDirectRunner", "DirectRunner"):
        return local_runner(), options
    return runner, options


def dask_settings(options, workers: int):
    """``(scheduler address or None, local workers)`` from Beam's Dask options (``dask_client_address``)."""
    if options is None:
        return None, max(1, int(workers))
    from apache_beam.runners.dask.dask_runner import DaskOptions

    return options.view_as(DaskOptions).address, max(1, int(workers))


# ------------------------------------------------------------------------------------- Dask
class _SlowExitFilter(logging.Filter):
    """Workers that loaded TensorFlow take more than Dask's 4 s to exit and are then killed: expected, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "still alive after" not in record.getMessage()


def beam_module():
    import apache_beam

    return apache_beam


def _apply(item, fn):
    index, value = item
    return index, fn(value)


def _run_task(item, scratch: str) -> dict:
    """One shard task on a Dask worker: its examples into ``scratch/task-<i>.pkl`` (atomically); a summary back."""
    import resource

    from jettf.utils import atomic_path

    index, processor, task = item
    start = time.perf_counter()
    cpu = time.process_time()
    examples = list(processor(task))
    stats = {"task": index, "jets": len(examples), "seconds": time.perf_counter() - start,
             "cpu_seconds": time.process_time() - cpu, "pid": os.getpid(), "host": socket.gethostname(),
             "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    with atomic_path(Path(scratch) / f"task-{index:06d}.pkl") as tmp:
        with open(tmp, "wb") as f:
            pickle.dump((stats, examples), f, protocol=pickle.HIGHEST_PROTOCOL)
    return stats


class DaskShards:
    """The shard stage of a build on Beam's DaskRunner; this process writes the records (see the module docstring).

    Use as a context manager around ``builder.download_and_prepare`` with ``builder.shard_runner``
    set to it: without ``address`` it starts a ``LocalCluster`` of ``workers`` single-threaded
    processes (closed on exit), with one it connects to that scheduler. The builder calls
    :meth:`map` for Pythia shards and for its plan, and :meth:`examples` once per split (all
    splits before any is consumed); the first split consumed launches one Beam pipeline with the
    tasks of every split, so workers never wait for a split to be written.

    Attributes:
        task_stats: per finished task: jets, seconds, CPU seconds, worker pid and host, the
            worker's peak RSS (MiB) after the task.
    """

    def __init__(self, address: Optional[str] = None, workers: int = 1, scratch_root=None, poll_s: float = 0.02):
        self.address = address
        self.workers = max(1, int(workers))
        self.scratch_root = scratch_root
        self.poll_s = poll_s
        self.task_stats: List[dict] = []
        self._cluster = None
        self._scratch: Optional[Path] = None
        self._pending: list = []  # (index, processor, task) not yet launched
        self._results: dict = {}  # task index -> the Beam pipeline result that computes it
        self._count = 0

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "DaskShards":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise RuntimeError("--beam-runner dask needs Beam's Dask extra: pip install 'apache-beam[dask]' "
                               "(or 'jettf[beam]')") from None
        root = Path(self.scratch_root or tempfile.gettempdir())
        root.mkdir(parents=True, exist_ok=True)
        self._scratch = Path(tempfile.mkdtemp(prefix=".jettf-dask-shards-", dir=root))
        # Dask's INFO lines (scheduler, nanny and worker start and stop) would drown the build's own output.
        self._log_level = logging.getLogger("distributed").level
        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.address is None:
            from dask.distributed import LocalCluster

            # ":0": the scheduler's HTTP server (always started) on a free port, not a contested 8787.
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=":0", silence_logs=logging.WARNING)
            self.address = self._cluster.scheduler_address
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what still runs, close the clients and the local cluster, remove the scratch files."""
        for result in {id(r): r for r in self._results.values()}.values():
            try:
                if not all(f.done() for f in result.futures):
                    result.cancel()
                result.client.close()
            except Exception:  # noqa: BLE001 - closing is best effort; the cluster goes next
                pass
        self._results.clear()
        if self._cluster is not None:
            nanny, quiet = logging.getLogger("distributed.nanny"), _SlowExitFilter()
            nanny.addFilter(quiet)
            try:
                self._cluster.close()
            finally:
                nanny.removeFilter(quiet)
            self._cluster = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
            logging.getLogger("distributed").setLevel(self._log_level)

    @property
    def description(self) -> str:
        where = f"a LocalCluster of {self.workers} processes" if self._cluster is not None else self.address
        return f"Beam DaskRunner on {where}"

    # ------------------------------------------------------------------ work
    def map(self, fn, items: Sequence) -> list:
        """``[fn(item) for item in items]`` computed on the cluster (one partition per item); small results only.

        The builder reads its plan (labels and constituent counts of every row range) this way.
        """
        if not items:
            return []
        pipeline = self._pipeline(len(items))
        _ = (pipeline
             | "Items" >> beam_module().Create(list(enumerate(items)))
             | "Apply" >> beam_module().Map(_apply, fn))
        result = pipeline.run()
        try:
            result.wait_until_finish()
            pairs = [pair for future in result.futures for pair in future.result()]
        finally:
            result.client.close()
        return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]

    def _pipeline(self, n_partitions: int):
        from apache_beam.options.pipeline_options import PipelineOptions
        from apache_beam.runners.dask.dask_runner import DaskRunner

        # One partition per element (the DaskRunner's default packs 128 elements into one partition).
        options = PipelineOptions([f"--dask_client_address={self.address}", f"--dask_npartitions={n_partitions}"])
        return beam_module().Pipeline(runner=DaskRunner(), options=options)

    def examples(self, processor, tasks: Sequence) -> Iterator:
        """The ``(key, example)`` pairs of ``tasks``, in task order, computed on the cluster."""
        if self._scratch is None:
            raise RuntimeError("DaskShards.examples: use the DaskShards object as a context manager")
        indices = list(range(self._count, self._count + len(tasks)))
        self._count += len(tasks)
        self._pending += [(i, processor, task) for i, task in zip(indices, tasks)]
        return self._stream(indices)

    def _launch(self) -> None:
        if not self._pending:
            return
        items, self._pending = self._pending, []
        pipeline = self._pipeline(len(items))
        _ = (pipeline
             | "ShardTasks" >> beam_module().Create(items)
             | "RenderFeaturesExamples" >> beam_module().Map(_run_task, str(self._scratch)))
        result = pipeline.run()
        for index, _, _ in items:
            self._results[index] = result

    def _stream(self, indices: List[int]) -> Iterator:
        self._launch()
        try:
            for index in indices:
                path = self._scratch / f"task-{index:06d}.pkl"
                result = self._results[index]
                while not path.exists():
                    if all(f.done() for f in result.futures):
                        for f in result.futures:
                            f.result()  # re-raises a worker's error here, with its traceback
                        if not path.exists():
                            raise RuntimeError(f"Dask build: shard task {index} finished without writing {path}")
                    time.sleep(self.poll_s)
                with open(path, "rb") as f:
                    stats, examples = pickle.load(f)
                path.unlink()
                self.task_stats.append(stats)
                yield from examples
        except BaseException:  # an error, Ctrl-C or the writer giving up: stop the cluster's work now
            self.close()
            raise

    def summary(self) -> str:
        """One line per worker: tasks, jets, busy seconds and peak RSS (MiB), to show memory stays bounded."""
        return "; ".join(f"worker {w}: {v['tasks']} tasks, {v['jets']} jets, {v['seconds']:.1f} s, peak RSS "
                         f"{v['max_rss_mb']:.0f} MiB" for w, v in sorted(self.worker_summary().items()))

    def worker_summary(self) -> dict:
        """Per worker (``host:pid``): tasks, jets, seconds and peak RSS (MiB) of the finished tasks."""
        out: dict = {}
        for s in self.task_stats:
            w = out.setdefault(f"{s['host']}:{s['pid']}", {"tasks": 0, "jets": 0, "seconds": 0.0, "max_rss_mb": 0.0})
            w["tasks"] += 1
            w["jets"] += s["jets"]
            w["seconds"] += s["seconds"]
            w["max_rss_mb"] = max(w["max_rss_mb"], s["max_rss_mb"])
        return out
