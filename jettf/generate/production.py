"""Sample production: shards in a process pool, resume, and the public file layouts.

Shards (fixed jets per shard, one seed each) are written atomically to
``out_dir/.shards/<key>/`` and kept, so an interrupted run resumes from the
finished shards and the final files can be rebuilt without Pythia. The final
files are written by :mod:`jettf.io` in the public layouts.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import threading
import time
import warnings
from queue import Empty
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from jettf.generate.pythia import (
    SHARD_JETS, ShardResult, class_seeds, generate_shard, load_shard, resolve_classes, save_shard, shard_sizes,
)
from jettf.generate.samples import PYTHIA_VERSION, get_card
from jettf.jets import JetBatch
from jettf.utils import PathLike, init_worker, stop_pool, worker_call, write_json

__all__ = ["generate_sample", "generated_mark", "TOP_TAGGING_SPLITS", "QG_JETS_PER_FILE"]

# Top Tagging Reference Dataset: 1.211M / 403k / 404k jets = 1.2 : 0.4 : 0.4 per million
# jets per class; ttv = 0 train, 1 test, 2 validation.
TOP_TAGGING_SPLITS = (("train.h5", 0.6, 0), ("val.h5", 0.2, 2), ("test.h5", 0.2, 1))
QG_JETS_PER_FILE = 100_000  # EnergyFlow: QG_jets.npz, QG_jets_1.npz, ... with 100k jets each
E2E_SAMPLE = "cms_quark_gluon"  # 003's events: images of the cms detector card, not constituents

_progress_queue = None  # set in pool workers by _init_worker


def _init_worker(queue, parent_pid: int, death_signal: bool) -> None:
    """Pool worker start: progress queue, and die with the parent (see :func:`jettf.utils.init_worker`)."""
    global _progress_queue
    _progress_queue = queue
    init_worker(parent_pid, death_signal)


def _run_shard(task: dict, progress=None) -> None:
    """Generate one shard and save it atomically."""
    if task["sample"] == E2E_SAMPLE:  # 003's events and images (jettf.generate.cms_quark_gluon)
        from jettf.generate import cms_quark_gluon

        cms_quark_gluon.save_shard(task["path"], cms_quark_gluon.generate_shard(
            task["class_name"], task["n_jets"], task["seed"], pileup=task.get("pileup"), progress=progress))
        return
    result = generate_shard(task["sample"], task["class_name"], task["n_jets"], task["seed"], progress=progress,
                            detector=task.get("detector"))
    save_shard(task["path"], result)


def _pool_job(run_shard: Callable, task: dict) -> None:
    # SIGTERM (the parent stopping the pool, or dying) unwinds the shard, so no partial file is left
    worker_call(run_shard, task, _progress_queue.put)


def _plan(sample: str, classes, n_jets: int, seed: int, shard_jets: int, work: Path) -> Dict[str, List[dict]]:
    card = get_card(sample)
    plan = {}
    for name in classes:
        sizes = shard_sizes(n_jets, shard_jets)
        plan[name] = [
            {"sample": sample, "class_name": name, "n_jets": size, "seed": s,
             "path": work / f"{name}_{i:05d}_n{size}.npz"}
            for i, (size, s) in enumerate(zip(sizes, class_seeds(card, seed, name, len(sizes))))
        ]
    return plan


def run_shard_tasks(run_shard: Callable, todo: List[dict], workers: int, total: int, done: int, desc: str,
                    progress: bool, unit: str = "jet") -> None:
    """Run ``run_shard(task, progress_callback)`` for each task: in this process (``workers <= 1``) or in a
    spawn pool of ``workers``, with one tqdm bar on stderr of ``total`` items (``done`` already there).
    ``run_shard`` must be a module-level function (pickled by name) that writes its shard atomically.
    Ctrl-C/SIGTERM stop the workers at once and keep the finished shards; a failed shard lets the running
    ones finish and re-raises its error."""
    bar = tqdm(total=total, initial=done, desc=desc, unit=unit, disable=not progress, smoothing=0.1,
               dynamic_ncols=True)
    workers = min(workers, len(todo))
    with bar:
        if workers <= 1:
            for task in todo:
                run_shard(task, bar.update)
        else:
            ctx = multiprocessing.get_context("spawn")  # never fork a parent that may hold TensorFlow threads
            queue = ctx.Queue()
            # Workers die with this process, even on SIGKILL (PR_SET_PDEATHSIG follows the creating thread).
            initargs = (queue, os.getpid(), threading.current_thread() is threading.main_thread())
            with futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=initargs) as pool:
                pending = {pool.submit(_pool_job, run_shard, task) for task in todo}
                try:
                    while pending:
                        finished, pending = futures.wait(pending, timeout=0.5, return_when=futures.FIRST_COMPLETED)
                        _drain(queue, bar)
                        for job in finished:
                            job.result()  # re-raise a worker's error here
                except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the workers now, keep the finished shards
                    stop_pool(pool)
                    raise
                except BaseException:  # a failed shard: drop the queued shards, let the running ones finish
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        bar.update(total - bar.n)


def _drain(queue, bar) -> None:
    while True:
        try:
            bar.update(queue.get_nowait())
        except Empty:
            return


def _merge(shards: List[ShardResult]):
    return JetBatch.concatenate([s.batch for s in shards]), np.concatenate([s.truth for s in shards])


def _split_sizes(n_jets: int) -> List[int]:
    """Jets per class in train, val, test (0.6 / 0.2 / 0.2, the remainder to test)."""
    head = [round(frac * n_jets) for _, frac, _ in TOP_TAGGING_SPLITS[:-1]]
    return head + [n_jets - sum(head)]


def _write_top_tagging(per_class: Dict[str, tuple], out_dir: Path, rng: np.random.Generator,
                       generated: dict) -> List[Path]:
    """Per class shuffle and split 0.6/0.2/0.2; each file shuffled, so every file is balanced."""
    from jettf.io import write_top_tagging  # imported here: pool workers need not load pandas

    pieces = {name: [] for name, _, _ in TOP_TAGGING_SPLITS}
    for batch, truth in per_class.values():
        order = rng.permutation(len(batch))
        bounds = np.cumsum(_split_sizes(len(batch))[:-1])
        for (name, _, _), index in zip(TOP_TAGGING_SPLITS, np.split(order, bounds)):
            pieces[name].append((batch.select(index), truth[index]))
    written = []
    for name, _, ttv in TOP_TAGGING_SPLITS:
        batch = JetBatch.concatenate([b for b, _ in pieces[name]])
        truth = np.concatenate([t for _, t in pieces[name]])
        order = rng.permutation(len(batch))
        written.append(write_top_tagging(batch.select(order), out_dir / name, truth=truth[order], ttv=ttv,
                                         generated=generated))
    return written


def _write_quark_gluon(per_class: Dict[str, tuple], out_dir: Path, rng: np.random.Generator,
                       generated: dict) -> List[Path]:
    """Files of at most 100k jets, each with an equal share of every class, shuffled."""
    from jettf.io import write_quark_gluon

    total = sum(len(b) for b, _ in per_class.values())
    n_files = max(1, -(-total // QG_JETS_PER_FILE))
    chunks = [np.array_split(rng.permutation(len(b)), n_files) for b, _ in per_class.values()]
    written = []
    for k in range(n_files):
        batch = JetBatch.concatenate([b.select(c[k]) for (b, _), c in zip(per_class.values(), chunks)])
        name = "QG_jets.npz" if k == 0 else f"QG_jets_{k}.npz"
        written.append(write_quark_gluon(batch.select(rng.permutation(len(batch))), out_dir / name,
                                         generated=generated))
    stale = sorted(set(out_dir.glob("QG_jets*.npz")) - set(written))
    if stale:  # readers take every QG_jets*.npz of a directory
        warnings.warn(f"{out_dir}: {[p.name for p in stale]} are not part of this sample (left from an earlier "
                      "run?); readers of the directory will include them", stacklevel=3)
    return written


def generated_mark(sample: str, n_jets: int, seed: int, classes: Sequence[str], shard_jets: int,
                   n_particles: int = 30, detector: Optional[str] = None, pileup: Optional[float] = None) -> dict:
    """The settings stored inside every generated file (``jettf.io.generated_settings`` reads them back).

    Everything that fixes the jets and nothing else (no timings, no paths), so
    the same command writes the same bytes.
    """
    card = get_card(sample)
    mark = {
        "generator": f"jettf.generate: Pythia {PYTHIA_VERSION} + FastJet (fjcore anti-kT)",
        "sample": sample,
        "reference": card.reference,
        "card_fingerprint": card.fingerprint(),
        "seed": int(seed),
        "n_jets_per_class": int(n_jets),
        "shard_jets": int(shard_jets),
        "classes": list(classes),
    }
    if sample == "jetnet":
        mark["n_particles"] = int(n_particles)
    if detector is not None:  # detector-level jets (jettf.detector): the card is part of what fixes them
        from jettf.detector import get_card as get_detector_card

        det = get_detector_card(detector)
        mark["detector"] = {"card": det.name, "fingerprint": det.fingerprint(), "reference": det.reference}
    if sample == E2E_SAMPLE:  # pile-up and the image geometry are part of what fixes the events
        from jettf.generate import cms_quark_gluon

        mark["pileup_mu"] = float(pileup or 0.0)
        mark["minbias_library"] = {"n_events": cms_quark_gluon.MINBIAS_EVENTS, "ecm": 8000.0, "seed": 1}
        mark["batch_events"] = cms_quark_gluon.BATCH_EVENTS
    return mark


def generate_sample(
    sample: str,
    n_jets: int,
    out_dir: PathLike,
    seed: int = 0,
    workers: int = 1,
    *,
    classes: Optional[Sequence[str]] = None,
    n_particles: int = 30,
    shard_jets: int = SHARD_JETS,
    progress: bool = True,
    detector: Optional[str] = None,
    map_shards=None,
    pileup: Optional[float] = None,
) -> List[Path]:
    """Generate ``n_jets`` jets per class and write them in the public layout of ``sample``.

    Layouts: jetnet ``g.hdf5 q.hdf5 t.hdf5 w.hdf5 z.hdf5`` (``n_particles`` 30, or 150
    for ``g150.hdf5`` ...); top_tagging ``train.h5 val.h5 test.h5`` with 1.2 : 0.4 : 0.4
    times ``n_jets`` jets, balanced and shuffled, truth top four-momenta and ``ttv``;
    quark_gluon ``QG_jets.npz, QG_jets_1.npz ...`` of at most 100k balanced jets; cms_quark_gluon
    ``quark-gluon_data-set_n<N>.hdf5`` and ``.parquet`` (003's E2E images of ``n_jets`` events per class,
    shuffled; :mod:`jettf.generate.cms_quark_gluon`).

    Args:
        seed: master seed; with ``shard_jets`` it fixes every jet and the shuffling,
            whatever ``workers`` is.
        workers: processes generating shards in parallel.
        classes: subset of the sample's classes (default all).
        shard_jets: jets per shard (the unit of seeding, parallelism and resume).
        progress: show a tqdm bar (stderr) with jets/s and ETA.
        detector: None (generator-level particles, the default) or a :mod:`jettf.detector` card
            name (``"atlas"``, ``"cms"``): the detector runs on each event's particles and the
            jets are clustered from particle-flow candidates (:mod:`jettf.generate.detector_level`).
        map_shards: ``map_shards(fn, tasks)`` runs ``fn(task)`` for every shard task elsewhere, e.g.
            on a Dask cluster (:meth:`jettf.data.distributed.DaskShards.map`); each task writes its
            shard file, so ``out_dir`` must be on storage the workers share. Default: ``workers``
            local processes.
        pileup: cms_quark_gluon only: <mu> of the Poisson pile-up overlaid on every event (003: 18-21);
            None or 0: none.

    Returns:
        The files written. Each carries the generator settings (:func:`generated_mark`;
        read back by :func:`jettf.io.generated_settings`), so it is recognised as
        generated wherever it is copied; the same settings write the same bytes.
        ``out_dir/generation.json`` records the card, seed and generation figures
        (timings too); ``out_dir/.shards/`` keeps the shards for resuming.
    """
    card = get_card(sample)
    classes = resolve_classes(sample, classes)
    if sample == "top_tagging" and min(_split_sizes(n_jets)) < 1:
        raise ValueError(f"top_tagging: n_jets={n_jets} per class gives {_split_sizes(n_jets)} jets per class in "
                         "train/val/test; expected at least 4 so that no file is empty")
    if sample == E2E_SAMPLE:
        if detector not in (None, "cms"):
            raise ValueError(f"{sample}: --detector {detector!r}; 003's images come from the cms card (its default)")
        detector = "cms"
    elif pileup:
        raise ValueError(f"{sample}: pileup={pileup!r}; pile-up is overlaid only for cms_quark_gluon")
    if pileup is not None and not pileup >= 0:
        raise ValueError(f"pileup: expected <mu> >= 0, got {pileup!r}")
    out_dir = Path(out_dir)
    key = f"{sample}_seed{seed}_shard{shard_jets}_{card.fingerprint()}"
    if detector is not None:
        from jettf.detector import get_card as get_detector_card

        key += f"_{detector}-{get_detector_card(detector).fingerprint()}"
    if pileup:
        key += f"_pu{float(pileup):g}"
    work = out_dir / ".shards" / key
    plan = _plan(sample, classes, n_jets, seed, shard_jets, work)
    tasks = [t for ts in plan.values() for t in ts]
    for t in tasks:
        t["detector"] = detector
        t["pileup"] = float(pileup) if pileup else None
    todo = [t for t in tasks if not t["path"].exists()]
    done = sum(t["n_jets"] for t in tasks if t["path"].exists())
    start = time.perf_counter()
    if map_shards is not None and todo:
        map_shards(_run_shard, todo)
    else:
        run_shard_tasks(_run_shard, todo, workers, n_jets * len(classes), done, f"{sample} ({workers} workers)",
                        progress)
    wall = time.perf_counter() - start

    if sample == E2E_SAMPLE:
        from jettf.generate import cms_quark_gluon

        shards = {name: [cms_quark_gluon.load_shard(t["path"]) for t in ts] for name, ts in plan.items()}
        per_class = {name: s for name, s in shards.items() if s}
    else:
        shards = {name: [load_shard(t["path"]) for t in ts] for name, ts in plan.items()}
        per_class = {name: _merge(s) for name, s in shards.items() if s}
    rng = np.random.default_rng(seed)
    generated = generated_mark(sample, n_jets, seed, classes, shard_jets, n_particles, detector, pileup)
    if not per_class:
        written = []
    elif sample == "jetnet":
        from jettf.io import write_jetnet

        batch = JetBatch.concatenate([b for b, _ in per_class.values()])
        written = write_jetnet(batch, out_dir, n_particles=n_particles, generated=generated)
    elif sample == "top_tagging":
        written = _write_top_tagging(per_class, out_dir, rng, generated)
    elif sample == E2E_SAMPLE:
        written = cms_quark_gluon.write_sample(per_class, out_dir, rng, generated)
    else:
        written = _write_quark_gluon(per_class, out_dir, rng, generated)

    write_json(out_dir / "generation.json", {
        "generator": generated["generator"],
        "sample": sample,
        "reference": card.reference,
        "card_fingerprint": card.fingerprint(),
        "seed": seed,
        "n_jets_per_class": n_jets,
        "shard_jets": shard_jets,
        **({"detector": generated["detector"]} if "detector" in generated else {}),
        **({"pileup_mu": generated["pileup_mu"]} if "pileup_mu" in generated else {}),
        "classes": {
            name: {
                "pythia_settings": list(card.pythia_settings(name)),
                "shard_seeds": [t["seed"] for t in plan[name]],
                "events": sum(s.events for s in shards[name]),
                "failed_events": sum(s.failed for s in shards[name]),
                "seconds": round(sum(s.seconds for s in shards[name]), 1),
                "cpu_seconds": round(sum(s.cpu_seconds for s in shards[name]), 1),
            }
            for name in classes
        },
        "wall_seconds_this_run": round(wall, 1),
        "files": [p.name for p in written],
    })
    return written
