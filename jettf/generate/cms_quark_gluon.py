"""003's CMS quark/gluon sample: di-quark and di-gluon events, detector images, the public E2E layout.

One shard = a fixed number of selected events of one class from one Pythia instance and one
numpy Generator, both seeded with the shard seed (as every jettf sample). Per batch of
``BATCH_EVENTS`` Pythia events (``nextBatch``: awkward arrays, no Python loop over particles):

1. the outgoing partons of the 2->2 process (event-record entries 5 and 6, before showering: the
   partons 003 matched in Pythia 6's documentation lines) must both have the class's flavour
   (light quarks u, d, s, or gluons; the card's ``dijet`` match);
2. the visible final state (plus Poisson(<mu>) minimum-bias events with ``pileup``) goes through
   the ``cms`` card of :mod:`jettf.detector` over the whole detector;
3. anti-kT jets (the card's R) of the particle-flow candidates (scikit-hep FastJet, one call per
   batch); each parton is matched to its nearest jet in (eta, phi) within the card's radius (0.4),
   the two jets must differ and both pass pT > 70 GeV and |eta| < 1.8 (003 section 2);
4. per selected event, the sparse images of :mod:`jettf.detector.e2e`: the leading jet's view
   (``X_jets``, the public column), the sub-leading jet's (``X_jet2``), the leading jet's
   generator-level EM/Had view (``X_jets_gen``), the full-detector image (``X_event``, 280 x 360)
   and its generator-level counterpart (``X_event_gen``), with both jets' four-momenta and view
   centres (what 003's event classifiers A, B, C, C-Gen and C-Zero need).

Classes are generated separately and equally (balanced, as 003); :func:`write_sample` shuffles
them into ``quark-gluon_data-set_n<N>.hdf5`` and its ``.parquet`` variant through
:func:`jettf.io.write_cms_quark_gluon`. Python touches no particle; only the per-batch
bookkeeping is a loop. Units: GeV, radians.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from jettf.detector import MinBiasLibrary, Particles, PileUp, get_card as get_detector_card, simulate
from jettf.detector import e2e
from jettf.detector.particles import pythia_final_state
from jettf.utils import PathLike, atomic_path

__all__ = ["SAMPLE", "DETECTOR", "BATCH_EVENTS", "IMAGE_SETS", "E2EShard", "generate_shard", "save_shard",
           "load_shard", "write_sample", "file_stem"]

SAMPLE = "cms_quark_gluon"
DETECTOR = "cms"  # 003's detector: the jettf.detector CMS card
BATCH_EVENTS = 200  # Pythia events per detector/clustering batch (part of the definition of a seeded shard)
JET_PT_MIN = 20.0  # GeV: jets clustered above this pT are candidates for the parton matching
MINBIAS_EVENTS = 2000  # minimum-bias library size for pile-up (jettf.detector.pileup), 8 TeV, seed 1
#: The image sets of a sample: name -> (channels, what). ``X_jets`` is the public column.
IMAGE_SETS = {
    "X_jets": (e2e.DETECTOR_CHANNELS, "leading jet, 125 x 125 view"),
    "X_jet2": (e2e.DETECTOR_CHANNELS, "sub-leading jet, 125 x 125 view"),
    "X_jets_gen": (e2e.GENERATOR_CHANNELS, "leading jet, generator-level 125 x 125 view (same centre)"),
    "X_event": (e2e.DETECTOR_CHANNELS, "full detector, 280 x 360"),
    "X_event_gen": (e2e.GENERATOR_CHANNELS, "full detector at generator level, 280 x 360"),
}
_fastjet_banner_shown = False


@dataclasses.dataclass
class E2EShard:
    """Selected events of one shard.

    Attributes:
        images: {name in :data:`IMAGE_SETS`: :class:`jettf.detector.e2e.PixelRows`}, one row per event.
        y: int64 ``[N]`` 1 quark, 0 gluon. pt, m0: the leading jet's pT and mass (GeV).
        jets: float64 ``[N, 2, 4]`` (pt, eta, phi, mass) of the leading and sub-leading matched jets.
        centers: int32 ``[N, 2, 2]`` (row, column) of each jet view's centre in the full-detector image.
        pthat: pT of the 2->2 process (GeV). events, failed, seconds, cpu_seconds: as ShardResult.
    """

    images: Dict[str, e2e.PixelRows]
    y: np.ndarray
    jets: np.ndarray
    centers: np.ndarray
    pthat: np.ndarray
    events: int = 0
    failed: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.y)

    @property
    def pt(self) -> np.ndarray:
        return self.jets[:, 0, 0]

    @property
    def m0(self) -> np.ndarray:
        return self.jets[:, 0, 3]

    def take(self, rows) -> "E2EShard":
        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(self, images={k: v.take(rows) for k, v in self.images.items()}, y=self.y[rows],
                                   jets=self.jets[rows], centers=self.centers[rows], pthat=self.pthat[rows])

    @staticmethod
    def concatenate(parts: List["E2EShard"]) -> "E2EShard":
        return E2EShard(
            images={k: e2e.PixelRows.concatenate([p.images[k] for p in parts]) for k in IMAGE_SETS},
            y=np.concatenate([p.y for p in parts]), jets=np.concatenate([p.jets for p in parts]),
            centers=np.concatenate([p.centers for p in parts]), pthat=np.concatenate([p.pthat for p in parts]),
            events=sum(p.events for p in parts), failed=sum(p.failed for p in parts),
            seconds=sum(p.seconds for p in parts), cpu_seconds=sum(p.cpu_seconds for p in parts),
        )


def _cluster(pflow, n_events: int, radius: float, pt_min: float):
    """Anti-kT jets of each event's candidates (one FastJet call for the batch): flat (event, pt, eta, phi, mass)."""
    import awkward as ak
    import fastjet

    from jettf.generate.detector_level import _flush_c_stdout
    from jettf.generate.pythia import _stdout_to_devnull

    global _fastjet_banner_shown
    counts = np.bincount(pflow.event, minlength=n_events)
    px, py = pflow.pt * np.cos(pflow.phi), pflow.pt * np.sin(pflow.phi)
    pz = pflow.pt * np.sinh(pflow.eta)
    particles = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": pflow.energy}), counts)
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    if _fastjet_banner_shown:
        jets = fastjet.ClusterSequence(particles, definition).inclusive_jets(min_pt=pt_min)
    else:  # FastJet prints its banner on first use in a process: keep stdout for the command's output
        with _stdout_to_devnull():
            jets = fastjet.ClusterSequence(particles, definition).inclusive_jets(min_pt=pt_min)
            _flush_c_stdout()
        _fastjet_banner_shown = True
    event = np.repeat(np.arange(n_events), ak.to_numpy(ak.num(jets)))
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(jets[f])).astype(np.float64) for f in ("px", "py", "pz", "E"))
    pt = np.hypot(jpx, jpy)
    eta = np.arcsinh(np.divide(jpz, pt, out=np.zeros_like(pt), where=pt > 0))
    mass = np.sqrt(np.maximum(je**2 - pt**2 - jpz**2, 0.0))
    return event, pt, eta, np.arctan2(jpy, jpx), mass


def _nearest(jet_event, jet_eta, jet_phi, target_eta, target_phi, n_events: int):
    """Per event, the index of the jet nearest (eta-phi dR) to the event's target, and that dR (-1, inf: no jets)."""
    d2 = (jet_eta - target_eta[jet_event]) ** 2 + ((jet_phi - target_phi[jet_event] + np.pi) % (2 * np.pi) - np.pi) ** 2
    order = np.lexsort((d2, jet_event))
    first = np.searchsorted(jet_event[order], np.arange(n_events))
    has = first < len(order)
    has[has] = jet_event[order][first[has]] == np.arange(n_events)[has]
    index = np.full(n_events, -1, np.int64)
    index[has] = order[first[has]]
    dr = np.full(n_events, np.inf)
    dr[has] = np.sqrt(d2[index[has]])
    return index, dr


def _select_batch(batch, card, jet_class, det, rng, pileup):
    """The selected events of one nextBatch (see the module docstring), as an :class:`E2EShard` (no stats)."""
    import awkward as ak

    prt = batch["prt"]
    ids = np.stack([ak.to_numpy(prt.id[:, i]) for i in (5, 6)], axis=1)
    flavour = np.isin(np.abs(ids), jet_class.pdg_ids).all(axis=1)
    events = np.flatnonzero(flavour)
    if not len(events):
        return None
    sub = batch[events]
    partons = sub["prt"].p
    ppx, ppy, ppz = (np.stack([ak.to_numpy(getattr(partons, f)[:, i]) for i in (5, 6)], axis=1) for f in
                     ("px", "py", "pz"))
    p_eta = np.arcsinh(ppz / np.maximum(np.hypot(ppx, ppy), 1e-12))
    p_phi = np.arctan2(ppy, ppx)
    n = len(sub)
    px, py, pz, e, pid, event = pythia_final_state(sub)
    out = simulate(Particles.from_cartesian(px, py, pz, e, pid, event, n), det, rng, pileup=pileup)
    j_event, j_pt, j_eta, j_phi, j_mass = _cluster(out.pflow, n, card.jet_radius, JET_PT_MIN)
    if not len(j_pt):
        return None
    match = [_nearest(j_event, j_eta, j_phi, p_eta[:, a], p_phi[:, a], n) for a in (0, 1)]
    (m1, dr1), (m2, dr2) = match
    ok = (m1 >= 0) & (m2 >= 0) & (dr1 < card.match_radius) & (dr2 < card.match_radius) & (m1 != m2)
    for m in (m1, m2):
        safe = np.where(ok, m, 0)
        ok &= (j_pt[safe] > card.pt_range[0]) & (j_pt[safe] < card.pt_range[1]) & \
            (np.abs(j_eta[safe]) < card.abs_eta_max)
    chosen = np.flatnonzero(ok)
    if not len(chosen):
        return None
    a, b = m1[chosen], m2[chosen]
    lead = np.where(j_pt[a] >= j_pt[b], a, b)
    second = np.where(j_pt[a] >= j_pt[b], b, a)
    jets = np.stack([np.stack([j_pt[j], j_eta[j], j_phi[j], j_mass[j]], axis=-1) for j in (lead, second)], axis=1)
    k = len(chosen)
    both = np.concatenate([chosen, chosen])
    c_eta, c_phi = e2e.jet_window_centers(out.hcal, det, both, jets[:, :, 1].T.ravel(), jets[:, :, 2].T.ravel())
    det_pixels = e2e.detector_pixels(out, det)
    gen_pixels = e2e.generator_pixels(out.particles, det)
    n_det, n_gen = len(e2e.DETECTOR_CHANNELS), len(e2e.GENERATOR_CHANNELS)
    images = {
        "X_jets": e2e.jet_views(det_pixels, det, chosen, c_eta[:k], c_phi[:k], n_det),
        "X_jet2": e2e.jet_views(det_pixels, det, chosen, c_eta[k:], c_phi[k:], n_det),
        "X_jets_gen": e2e.jet_views(gen_pixels, det, chosen, c_eta[:k], c_phi[:k], n_gen),
        "X_event": e2e.full_images(det_pixels, det, chosen, n_det),
        "X_event_gen": e2e.full_images(gen_pixels, det, chosen, n_gen),
    }
    centers = np.stack([np.stack([c_eta[:k], c_phi[:k]], -1), np.stack([c_eta[k:], c_phi[k:]], -1)], axis=1)
    centers[..., 0] += e2e.FULL_ROWS // 2  # crystal ieta -> row of the full-detector image
    pthat = np.sqrt(np.asarray(batch["info"]["pT2Hat"], dtype=np.float64))[events][chosen]
    label = card.class_names.index(jet_class.name)  # gluon 0, quark 1: the public y
    return E2EShard(images, np.full(k, label, np.int64), jets, centers.astype(np.int32), pthat)


def generate_shard(class_name: str, n_events: int, seed: int, *, pileup: Optional[float] = None,
                   progress: Optional[Callable[[int], None]] = None, batch_events: int = BATCH_EVENTS) -> E2EShard:
    """``n_events`` selected di-quark (``"quark"``) or di-gluon (``"gluon"``) events with one Pythia instance
    seeded with ``seed``. ``pileup``: <mu> of Poisson minimum-bias events overlaid on each event (None: none)."""
    from jettf.generate.pythia import _init_pythia
    from jettf.generate.samples import get_card

    card = get_card(SAMPLE)
    jet_class = card.jet_class(class_name)
    det = get_detector_card(DETECTOR)
    start, cpu_start = time.perf_counter(), time.process_time()
    pythia = _init_pythia(card.pythia_settings(class_name), seed)
    rng = np.random.default_rng(seed)
    pu = None
    if pileup:
        pu = PileUp(MinBiasLibrary.cached(n_events=MINBIAS_EVENTS, ecm=8000.0, seed=1), float(pileup))
    parts, done, events, failed = [], 0, 0, 0
    max_events = 10_000 + 2_000 * n_events
    while done < n_events:
        if events >= max_events:
            raise RuntimeError(f"{SAMPLE}/{class_name}: only {done} of {n_events} events passed the selection in "
                               f"{events} events; check the card's process and cuts")
        batch = pythia.nextBatch(batch_events)
        failed += batch_events - len(batch)
        events += batch_events
        if len(batch) == 0:
            continue
        part = _select_batch(batch, card, jet_class, det, rng, pu)
        if part is None:
            continue
        part = part.take(np.arange(min(len(part), n_events - done)))
        parts.append(part)
        done += len(part)
        if progress is not None:
            progress(len(part))
    if not parts:
        shape = {k: ((e2e.JET_NPIX, e2e.JET_NPIX) if "jet" in k else (e2e.FULL_ROWS, det.ecal.n_phi)) + (len(c),)
                 for k, (c, _) in IMAGE_SETS.items()}
        empty = {k: e2e.PixelRows(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros((0, s[2]), np.float32), s)
                 for k, s in shape.items()}
        parts = [E2EShard(empty, np.zeros(0, np.int64), np.zeros((0, 2, 4)), np.zeros((0, 2, 2), np.int32),
                          np.zeros(0))]
    shard = E2EShard.concatenate(parts)
    return dataclasses.replace(shard, events=events, failed=failed, seconds=time.perf_counter() - start,
                               cpu_seconds=time.process_time() - cpu_start)


def save_shard(path: PathLike, shard: E2EShard) -> None:
    """Write a shard atomically as ``.npz`` (the generator's work file, not a public format)."""
    arrays = {"y": shard.y, "jets": shard.jets, "centers": shard.centers, "pthat": shard.pthat,
              "stats": np.asarray([shard.events, shard.failed, shard.seconds, shard.cpu_seconds], np.float64)}
    for name, rows in shard.images.items():
        arrays.update({f"{name}__offsets": rows.offsets, f"{name}__index": rows.index,
                       f"{name}__values": rows.values, f"{name}__shape": np.asarray(rows.shape, np.int64)})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_shard(path: PathLike) -> E2EShard:
    """Read a shard written by :func:`save_shard`."""
    with np.load(path) as data:
        images = {name: e2e.PixelRows(data[f"{name}__offsets"], data[f"{name}__index"], data[f"{name}__values"],
                                      tuple(int(s) for s in data[f"{name}__shape"])) for name in IMAGE_SETS}
        events, failed, seconds, cpu_seconds = data["stats"]
        return E2EShard(images, data["y"], data["jets"], data["centers"], data["pthat"], int(events), int(failed),
                        float(seconds), float(cpu_seconds))


def file_stem(n_events: int) -> str:
    """``quark-gluon_data-set_n<N>``: the public file's name (003's test set is ``..._n139306.hdf5``)."""
    return f"quark-gluon_data-set_n{int(n_events)}"


def write_sample(per_class: Dict[str, List[E2EShard]], out_dir: Path, rng: np.random.Generator,
                 generated: dict) -> List[Path]:
    """Every class's events, shuffled together, as ``quark-gluon_data-set_n<N>.hdf5`` and ``.parquet``."""
    from jettf.io import write_cms_quark_gluon

    shard = E2EShard.concatenate([s for shards in per_class.values() for s in shards])
    shard = shard.take(rng.permutation(len(shard)))
    stem = file_stem(len(shard))
    extras = {"jet_pt": shard.jets[..., 0], "jet_eta": shard.jets[..., 1], "jet_phi": shard.jets[..., 2],
              "jet_m": shard.jets[..., 3], "jet_center": shard.centers}
    channels = {name: channels for name, (channels, _) in IMAGE_SETS.items()}
    written = []
    for suffix in (".hdf5", ".parquet"):
        written.append(write_cms_quark_gluon(out_dir / f"{stem}{suffix}", shard.images, shard.y, shard.pt, shard.m0,
                                             channels=channels, extras=extras, generated=generated))
    stale = sorted(p for p in out_dir.glob("quark-gluon_data-set_n*.*") if p not in written)
    if stale:
        import warnings

        warnings.warn(f"{out_dir}: {[p.name for p in stale]} are not part of this sample (left from an earlier "
                      "run?); readers of the directory may take them", stacklevel=3)
    return written
