"""004's lepton samples: Pythia 8 events through :mod:`jettf.detector`'s ``atlas`` card, candidates, images.

``python -m jettf.generate electrons|muons --n-jets N --out DIR`` writes ``DIR/electrons.h5`` or
``DIR/muons.h5`` (:mod:`jettf.io.leptons`) with ``N`` candidates per class. The physics (processes, cuts,
image geometry) is in :mod:`jettf.calo.cards`; the differences from 004 are in ``README.md`` here.

Per batch of events (``Pythia.nextBatch``: awkward arrays, no Python loop over particles):

- **electrons**: the seed of an event is its hardest generator-level electron with pt > 9 GeV and |eta| < 2.2
  whose first non-electron ancestor is the Z' (signal) or a c/b hadron (background: b b-bar events). The visible
  particles within |delta eta|, |delta phi| < 1 of it are simulated (tracks, ECAL cells, HCAL towers, noise
  in that region); the candidate is the seed's track (delta-R < 0.01) with pt > 10 GeV and |eta| < 2.125,
  whose image centre (hottest ECAL cell within 9 x 9 cells of the track) has an ECAL deposit of at least
  half the track pt in 7 x 7 cells (loose E/p) and R_had < 0.5 (loose hadronic leakage). One candidate per
  event at most.
- **muons**: the candidate of an event is its hardest muon with pt in [10, 15] GeV and |eta| < 2.5 whose
  first non-muon ancestor in the truth record is the Z' (signal) or a c/b hadron (background). The muon is
  propagated to the ECAL face; the visible particles within 0.8 of that point and Poisson(50) minimum-bias
  events from the cached pile-up library (:class:`jettf.detector.MinBiasLibrary`) are simulated there.

Machinery as :mod:`jettf.generate.production`: shards of a fixed number of candidates per class, each
seeded from ``jettf.utils.shard_seeds`` (Pythia's seed and the detector's numpy Generator), written
atomically to ``DIR/.shards/<key>/`` and kept (a rerun resumes), a spawn process pool whose workers die
with the parent, a tqdm bar on stderr; the final file is shuffled with the master seed, weighted and
written atomically with the generator's settings inside. Same seed and shard size, same bytes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from jettf.calo.cards import ElectronCard, MuonCard, get_lepton_card
from jettf.generate.production import run_shard_tasks
from jettf.jets import wrap_phi
from jettf.utils import PathLike, atomic_path, shard_seeds, write_json

__all__ = ["generate_lepton_shard", "generate_lepton_sample", "pt_weights", "LEPTON_SHARD", "BATCH_EVENTS",
           "is_heavy_flavour_hadron"]

LEPTON_SHARD = 500  # candidates per shard (part of the definition of a seeded sample)
BATCH_EVENTS = 200  # Pythia events per nextBatch / detector call (part of it too)
_FIELDS = {"electrons": ("ecal_et", "ecal_e", "hcal_et", "hcal_e", "hcal_offset", "pt", "eta"),
           "muons": ("image_et", "cells", "pt", "eta")}


# ---------------------------------------------------------------------------------------------- truth record
class _Record:
    """Flat event-record columns of a nextBatch (all events, all entries) and per-entry event index."""

    def __init__(self, events):
        import awkward as ak

        prt = events["prt"]
        counts = ak.to_numpy(ak.num(prt))
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.event = np.repeat(np.arange(len(counts)), counts)
        self.id = ak.to_numpy(ak.flatten(prt.id)).astype(np.int64)
        self.status = ak.to_numpy(ak.flatten(prt.status))
        self.mother1 = ak.to_numpy(ak.flatten(prt.mother1)).astype(np.int64)
        p = prt.p
        px, py, pz = (ak.to_numpy(ak.flatten(getattr(p, f))).astype(np.float64) for f in ("px", "py", "pz"))
        self.energy = ak.to_numpy(ak.flatten(p.e)).astype(np.float64)
        self.pt = np.hypot(px, py)
        self.eta = np.clip(np.arcsinh(np.divide(pz, self.pt, out=np.sign(pz) * 4.85e8, where=self.pt > 0)), -20, 20)
        self.phi = np.arctan2(py, px)
        self.n_events = len(counts)

    def first_other_ancestor(self, index: np.ndarray) -> np.ndarray:
        """|PDG id| of the first ancestor (through mother1) whose id differs from the particle's own
        (skips the particle's own copies after radiation); 0 where the chain ends first."""
        current = np.asarray(index, np.int64).copy()
        own = self.id[current]
        result = np.zeros(len(current), np.int64)
        active = np.ones(len(current), dtype=bool)
        for _ in range(64):  # copies are few; the bound only guards against malformed records
            if not active.any():
                break
            local = self.mother1[current]
            stop = active & (local <= 0)
            active &= ~stop
            mother = self.offsets[self.event[current]] + np.maximum(local, 0)
            other = active & (self.id[mother] != own)
            result[other] = np.abs(self.id[mother[other]])
            active &= ~other
            current = np.where(active, mother, current)
        return result


def is_heavy_flavour_hadron(abs_id) -> np.ndarray:
    """True for hadrons with a c or b quark (mesons x4xx/x5xx, baryons 4xxx/5xxx, quarkonia)."""
    a = np.asarray(abs_id, np.int64)
    return (a > 100) & (np.isin((a // 100) % 10, (4, 5)) | np.isin((a // 1000) % 10, (4, 5)))


def _hardest_per_event(candidates: np.ndarray, event: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Indices (into the flat record) of the highest-pt candidate of each event that has one, by event."""
    if candidates.size == 0:
        return candidates
    order = candidates[np.lexsort((pt[candidates], event[candidates]))]
    last = np.r_[event[order][1:] != event[order][:-1], True]
    return order[last]


def _window_particles(rec: _Record, visible: np.ndarray, events: np.ndarray, eta_c, phi_c, half: float):
    """Particles (flat arrays) of ``visible`` entries of ``events`` within the window around their centre;
    event index = position in ``events``."""
    from jettf.detector import Particles

    pos = np.full(rec.n_events, -1, np.int64)
    pos[events] = np.arange(len(events))
    k = pos[rec.event[visible]]
    keep = k >= 0
    idx, k = visible[keep], k[keep]
    keep = (np.abs(rec.eta[idx] - eta_c[k]) < half) & (np.abs(wrap_phi(rec.phi[idx] - phi_c[k])) < half)
    idx, k = idx[keep], k[keep]
    return Particles.from_arrays(rec.pt[idx], rec.eta[idx], rec.phi[idx], rec.energy[idx], rec.id[idx], k,
                                 len(events))


# ---------------------------------------------------------------------------------------------- candidates
def _electron_candidates(rec: _Record, label: int, card: ElectronCard, detector, rng) -> Dict[str, np.ndarray]:
    from jettf.detector import simulate
    from jettf.detector.calorimeter import Region
    from jettf.detector.particles import INVISIBLE, species

    from jettf.calo.images import electron_images, window_sum

    visible = np.flatnonzero((rec.status > 0) & (species(rec.id) != INVISIBLE))
    loose = visible[(rec.pt[visible] > card.seed_pt_min) & (np.abs(rec.eta[visible]) < card.seed_abs_eta_max)]
    electrons = loose[np.abs(rec.id[loose]) == 11]
    ancestor = rec.first_other_ancestor(electrons)
    seeds = electrons[ancestor == 32] if label == 1 else electrons[is_heavy_flavour_hadron(ancestor)]
    seeds = _hardest_per_event(seeds, rec.event, rec.pt)
    n = len(seeds)
    if n == 0:
        return {}
    eta_s, phi_s = rec.eta[seeds], rec.phi[seeds]
    particles = _window_particles(rec, visible, rec.event[seeds], eta_s, phi_s, card.window)
    out = simulate(particles, detector, rng, region=Region(eta_s, phi_s, card.window, card.window))
    # The seed's track: the hardest track within max_track_match_dr of the seed's direction.
    t = out.tracks
    near = np.hypot(t.eta - eta_s[t.event], wrap_phi(t.phi - phi_s[t.event])) < card.max_track_match_dr
    best = _hardest_per_event(np.flatnonzero(near), t.event, t.pt)
    has = np.zeros(n, dtype=bool)
    has[t.event[best]] = True
    trk_pt, trk_eta, trk_phi = np.zeros(n), np.zeros(n), np.zeros(n)
    trk_pt[t.event[best]], trk_eta[t.event[best]], trk_phi[t.event[best]] = t.pt[best], t.eta[best], t.phi[best]
    images = electron_images(out.ecal, out.hcal, n, trk_eta, trk_phi, detector, card)
    matched = window_sum(images.ecal_et, *card.match_window) >= card.match_fraction * trk_pt
    ecal_sum = images.ecal_et.sum(axis=(1, 2))
    leakage = images.hcal_et.sum(axis=(1, 2)) < card.max_r_had * ecal_sum
    keep = (has & (trk_pt > card.track_pt_min) & (np.abs(trk_eta) < card.abs_eta_max) & images.found & matched
            & leakage)
    return {"ecal_et": images.ecal_et[keep], "ecal_e": images.ecal_e[keep], "hcal_et": images.hcal_et[keep],
            "hcal_e": images.hcal_e[keep], "hcal_offset": images.hcal_offset[keep], "pt": trk_pt[keep],
            "eta": trk_eta[keep]}


def _muon_candidates(rec: _Record, label: int, card: MuonCard, detector, rng, pileup) -> Dict[str, np.ndarray]:
    from jettf.detector import simulate
    from jettf.detector.calorimeter import Region
    from jettf.detector.particles import INVISIBLE, species
    from jettf.detector.propagation import propagate

    from jettf.calo.images import cone_cells, cone_image

    visible = np.flatnonzero((rec.status > 0) & (species(rec.id) != INVISIBLE))
    lo, hi = card.pt_range
    muons = visible[(np.abs(rec.id[visible]) == 13) & (rec.pt[visible] >= lo) & (rec.pt[visible] < hi)
                    & (np.abs(rec.eta[visible]) < card.abs_eta_max)]
    ancestor = rec.first_other_ancestor(muons)
    muons = muons[ancestor == 32] if label == 1 else muons[is_heavy_flavour_hadron(ancestor)]
    muons = _hardest_per_event(muons, rec.event, rec.pt)
    n = len(muons)
    if n == 0:
        return {}
    charge = -np.sign(rec.id[muons]).astype(np.float64)  # mu- is PDG 13
    ecal = detector.ecal
    hit = propagate(rec.pt[muons], rec.eta[muons], rec.phi[muons], charge, detector.solenoid, ecal.radius,
                    ecal.half_length)
    eta_c, phi_c = hit.eta, hit.phi
    particles = _window_particles(rec, visible, rec.event[muons], eta_c, phi_c, card.window)
    region = Region(eta_c, phi_c, card.window, card.window)
    out = simulate(particles, detector, rng, pileup=pileup, region=region,
                   subtract_charged_pileup=card.subtract_charged_pileup)
    image = cone_image((out.ecal, out.hcal), (detector.ecal, detector.hcal), n, eta_c, phi_c, card.cone,
                       card.pixels)
    cells = cone_cells((out.ecal, out.hcal), n, eta_c, phi_c, card.cone, card.max_cells)
    keep = hit.reached
    return {"image_et": image[keep], "cells": cells[keep], "pt": rec.pt[muons][keep], "eta": rec.eta[muons][keep]}


def _pileup(card: MuonCard, library=None):
    from jettf.detector import MinBiasLibrary, PileUp

    if library is None:
        library = MinBiasLibrary.cached(n_events=card.pileup_library_events, ecm=13000.0)
    return PileUp(library, card.pileup_mu)


def generate_lepton_shard(sample: str, label: int, n: int, seed: int, *, progress: Optional[Callable] = None,
                          batch_events: int = BATCH_EVENTS, pileup_library=None) -> dict:
    """``n`` candidates of class ``label`` (1 signal, 0 background) of ``sample`` with one Pythia instance
    seeded with ``seed`` (and the detector's numpy Generator). Returns the candidate arrays (``_FIELDS``)
    and ``events``, ``failed``, ``seconds``, ``cpu_seconds``. ``pileup_library``: muons only, a
    :class:`jettf.detector.MinBiasLibrary` (default: the cached Pythia library)."""
    from jettf.detector import get_card
    from jettf.generate.pythia import _init_pythia

    card = get_lepton_card(sample)
    detector = get_card(card.detector)
    start, cpu_start = time.perf_counter(), time.process_time()
    pythia = _init_pythia(card.pythia_settings(label), seed)
    rng = np.random.default_rng(seed)
    pileup = _pileup(card, pileup_library) if sample == "muons" else None
    parts, have, events, failed = [], 0, 0, 0
    max_events = 20_000 + 2_000 * n
    while have < n:
        if events >= max_events:
            raise RuntimeError(f"{sample}/{card.class_names[label]}: only {have} of {n} candidates in {events} "
                               "events; check the card's process and cuts")
        batch = pythia.nextBatch(batch_events)
        failed += batch_events - len(batch)
        events += batch_events
        if len(batch) == 0:
            continue
        rec = _Record(batch)
        if sample == "electrons":
            found = _electron_candidates(rec, label, card, detector, rng)
        else:
            found = _muon_candidates(rec, label, card, detector, rng, pileup)
        if found:
            take = min(len(found["pt"]), n - have)
            parts.append({k: v[:take] for k, v in found.items()})
            have += take
            if progress is not None:
                progress(take)
    fields = _FIELDS[sample]
    result = {k: np.concatenate([p[k] for p in parts]) for k in fields}
    result.update(events=events, failed=failed, seconds=time.perf_counter() - start,
                  cpu_seconds=time.process_time() - cpu_start)
    return result


# ---------------------------------------------------------------------------------------------- production
def _run_shard(task: dict, progress=None) -> None:
    result = generate_lepton_shard(task["sample"], task["label"], task["n"], task["seed"], progress=progress)
    with atomic_path(task["path"]) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v) for k, v in result.items()})


def pt_weights(pt_from, pt_to, edges) -> np.ndarray:
    """Weights ``[len(pt_from)]`` that make the ``pt_from`` histogram (``edges``, last bin open, GeV) the shape
    of ``pt_to``'s, normalized to a mean of 1; bins ``pt_to`` fills but ``pt_from`` does not stay at 0."""
    edges = np.asarray(edges, np.float64)
    bins = lambda pt: np.clip(np.searchsorted(edges, pt, side="right") - 1, 0, len(edges) - 1)  # noqa: E731
    h_from = np.bincount(bins(pt_from), minlength=len(edges)).astype(np.float64)
    h_to = np.bincount(bins(pt_to), minlength=len(edges)).astype(np.float64)
    ratio = np.divide(h_to / max(h_to.sum(), 1.0), h_from / max(h_from.sum(), 1.0), out=np.zeros_like(h_to),
                      where=h_from > 0)
    w = ratio[bins(pt_from)]
    return w / w.mean() if w.sum() > 0 else np.ones(len(w))


def generated_lepton_mark(sample: str, n: int, seed: int, shard: int) -> dict:
    """The settings stored inside every generated lepton file (:func:`jettf.io.generated_settings`)."""
    from jettf.detector import get_card
    from jettf.generate.samples import PYTHIA_VERSION

    card = get_lepton_card(sample)
    det = get_card(card.detector)
    return {
        "generator": f"jettf.generate: Pythia {PYTHIA_VERSION} + jettf.detector",
        "sample": sample, "reference": card.reference, "card_fingerprint": card.fingerprint(),
        "seed": int(seed), "n_jets_per_class": int(n), "shard_jets": int(shard),
        "classes": list(card.class_names), "batch_events": BATCH_EVENTS,
        "detector": {"card": det.name, "fingerprint": det.fingerprint(), "reference": det.reference},
    }


def generate_lepton_sample(sample: str, n: int, out_dir: PathLike, seed: int = 0, workers: int = 1, *,
                           shard: int = LEPTON_SHARD, progress: bool = True) -> List[Path]:
    """Generate ``n`` candidates per class of ``sample`` (``"electrons"``, ``"muons"``) and write
    ``out_dir/electrons.h5`` or ``out_dir/muons.h5``; returns ``[path]``. Resumes from ``out_dir/.shards``."""
    from jettf.detector import get_card
    from jettf.io.leptons import ELECTRONS_FILE, MUONS_FILE, write_electrons, write_muons

    card = get_lepton_card(sample)
    if n < 1 or workers < 1 or shard < 1:
        raise ValueError(f"{sample}: n={n}, workers={workers}, shard={shard}; expected >= 1 each")
    out_dir = Path(out_dir)
    det = get_card(card.detector)
    work = out_dir / ".shards" / f"{sample}_seed{seed}_shard{shard}_{card.fingerprint()}_{det.fingerprint()}"
    sizes = [shard] * (n // shard) + ([n % shard] if n % shard else [])
    class_seeds = shard_seeds(seed, 2)
    tasks = []
    for label in (1, 0):
        for i, (size, s) in enumerate(zip(sizes, shard_seeds(class_seeds[label], len(sizes)))):
            tasks.append({"sample": sample, "label": label, "n": size, "seed": s,
                          "path": work / f"{card.class_names[label]}_{i:05d}_n{size}.npz"})
    todo = [t for t in tasks if not t["path"].exists()]
    done = sum(t["n"] for t in tasks if t["path"].exists())
    if sample == "muons" and todo:
        _pileup(card)  # make the cached pile-up library once, before any worker needs it
    start = time.perf_counter()
    run_shard_tasks(_run_shard, todo, workers, 2 * n, done, f"{sample} ({workers} workers)", progress,
                    unit="cand")
    wall = time.perf_counter() - start

    shards = {label: [dict(np.load(t["path"])) for t in tasks if t["label"] == label] for label in (0, 1)}
    fields = _FIELDS[sample]
    per_class = {label: {k: np.concatenate([s[k] for s in shards[label]]) for k in fields} for label in (0, 1)}
    arrays = {k: np.concatenate([per_class[0][k], per_class[1][k]]) for k in fields}
    counts = [len(per_class[label]["pt"]) for label in (0, 1)]
    arrays["y"] = np.concatenate([np.zeros(counts[0], np.int8), np.ones(counts[1], np.int8)])
    # 004: electrons: background reweighted to the signal pt; muons: signal reweighted to the background pt.
    weight = np.ones(len(arrays["y"]))
    moved = 0 if sample == "electrons" else 1
    target = 1 - moved
    weight[arrays["y"] == moved] = pt_weights(per_class[moved]["pt"], per_class[target]["pt"], card.pt_bins)
    arrays["weight"] = weight
    order = np.random.default_rng(seed).permutation(len(weight))
    arrays = {k: v[order] for k, v in arrays.items()}
    mark = generated_lepton_mark(sample, n, seed, shard)
    path = out_dir / (ELECTRONS_FILE if sample == "electrons" else MUONS_FILE)
    (write_electrons if sample == "electrons" else write_muons)(arrays, path, generated=mark)
    write_json(out_dir / f"generation_{sample}.json", {
        **mark,
        "classes": {card.class_names[label]: {
            "pythia_settings": list(card.pythia_settings(label)),
            "shard_seeds": [t["seed"] for t in tasks if t["label"] == label],
            "events": int(sum(int(s["events"]) for s in shards[label])),
            "failed_events": int(sum(int(s["failed"]) for s in shards[label])),
            "candidates": int(len(per_class[label]["pt"])),
            "seconds": round(float(sum(float(s["seconds"]) for s in shards[label])), 1),
            "cpu_seconds": round(float(sum(float(s["cpu_seconds"]) for s in shards[label])), 1),
        } for label in (1, 0)},
        "wall_seconds_this_run": round(wall, 1),
        "files": [path.name],
    })
    return [path]
