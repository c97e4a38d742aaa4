"""Detector-level jets: Pythia events through :mod:`jettf.detector`, then jet clustering.

As in the public Delphes-level samples, the detector runs on every visible
final-state particle of the event before any jet is formed, and the jets are
clustered (anti-kT, the card's R) from the particle-flow-like candidates
(tracks, photons, neutral hadrons, Delphes' E-flow objects). The leading
detector-level jet must pass the card's pT window and |eta| or |y| cut and be
matched to the class's truth (partons and resonances of the event record,
matched to the detector jet's axis), exactly as generator-level jets are.

Events come in batches from ``Pythia.nextBatch`` (awkward arrays, no Python loop
over particles); the detector and FastJet (scikit-hep, C++) run on a whole
batch at once; Python touches only the few truth entries of selected events.
A shard is fixed by its seed (Pythia's, and the detector's numpy Generator).
Units: GeV, radians.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

from jettf.detector import Particles, get_card as get_detector_card, simulate
from jettf.detector.particles import pythia_final_state
from jettf.detector.simulate import pad_candidates

__all__ = ["generate_shard_detector", "BATCH_EVENTS", "match_record"]

BATCH_EVENTS = 200  # Pythia events per detector/clustering batch (part of the definition of a seeded shard)
_banner_shown = False


class _Record:
    """The event-record columns of one event that truth matching needs (numpy, from nextBatch)."""

    def __init__(self, ids, d1, d2, px, py, pz, e, m, is_resonance):
        self.ids, self.d1, self.d2 = ids, d1, d2
        self.px, self.py, self.pz, self.e, self.m = px, py, pz, e, m
        self.is_resonance = is_resonance  # callable: PDG id -> bool (Pythia's ParticleData)

    def daughter_list(self, i: int) -> list:
        """Pythia's Particle::daughterList (without the beam special case, irrelevant here)."""
        a, b = int(self.d1[i]), int(self.d2[i])
        if a == 0 and b == 0:
            return []
        if b == 0 or b == a:
            return [a]
        if b > a:
            return list(range(a, b + 1))
        return [b, a]

    def bot_copy_id(self, i: int) -> int:
        """Pythia's Particle::iBotCopyId() (full version): follow the unique same-id daughter."""
        idsave = self.ids[i]
        while True:
            nxt = 0
            for d in self.daughter_list(i):
                if self.ids[d] == idsave:
                    if nxt:
                        return i
                    nxt = d
            if not nxt:
                return i
            i = nxt

    def y(self, i: int) -> float:
        """Pythia's Particle::y(): log((E + |pz|) / mT) with the stored mass, signed by pz."""
        mt = max(np.sqrt(self.m[i] ** 2 + self.px[i] ** 2 + self.py[i] ** 2), 1e-20)
        temp = np.log((self.e[i] + abs(self.pz[i])) / mt)
        return temp if self.pz[i] > 0 else -temp

    def phi(self, i: int) -> float:
        return float(np.arctan2(self.py[i], self.px[i]))

    def decay_quarks(self, i: int) -> list:
        """Quarks a resonance decays to, through intermediate resonances (as pythia._decay_quarks)."""
        quarks = []
        for d in self.daughter_list(self.bot_copy_id(i)):
            if self.is_resonance(int(self.ids[d])):
                quarks += self.decay_quarks(d)
            elif 1 <= abs(int(self.ids[d])) <= 8:
                quarks.append(d)
        return quarks


def _flush_c_stdout() -> None:
    """Flush C's stdout buffer (FastJet's banner) while it still points where it was redirected."""
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _delta_r2(y1, phi1, y2, phi2) -> float:
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return (y1 - y2) ** 2 + dphi**2


def match_record(record: _Record, jet_class, jet_y: float, jet_phi: float, r2: float):
    """:func:`jettf.generate.pythia._match` on a nextBatch event record: the truth (E, px, py, pz)
    if the jet belongs to the class, else None."""
    zero = (0.0, 0.0, 0.0, 0.0)
    if jet_class.match == "none":
        return zero
    outgoing = [record.bot_copy_id(i) for i in (5, 6)]
    if jet_class.match == "process":
        parton = next(i for i in outgoing if not record.is_resonance(int(record.ids[i])))
        return zero if abs(int(record.ids[parton])) in jet_class.pdg_ids else None
    if jet_class.match == "parton":
        d2 = [_delta_r2(jet_y, jet_phi, record.y(i), record.phi(i)) for i in outgoing]
        nearest = outgoing[int(np.argmin(d2))]
        return zero if min(d2) < r2 and abs(int(record.ids[nearest])) in jet_class.pdg_ids else None
    for i in (5, 6):  # "decay"
        res = record.bot_copy_id(i)
        if abs(int(record.ids[res])) not in jet_class.pdg_ids:
            continue
        if _delta_r2(jet_y, jet_phi, record.y(res), record.phi(res)) >= r2:
            continue
        if all(_delta_r2(jet_y, jet_phi, record.y(q), record.phi(q)) < r2 for q in record.decay_quarks(i)):
            return (record.e[res], record.px[res], record.py[res], record.pz[res])
    return None


def _records(events, is_resonance):
    """Per event, a :class:`_Record` factory over flat numpy columns of the whole batch."""
    import awkward as ak

    prt = events["prt"]
    offsets = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(prt)))])
    flat = {name: ak.to_numpy(ak.flatten(prt[name])) for name in ("id", "daughter1", "daughter2", "m")}
    for name in ("px", "py", "pz", "e"):
        flat[name] = ak.to_numpy(ak.flatten(getattr(prt.p, name)))

    def record(k: int) -> _Record:
        s = slice(offsets[k], offsets[k + 1])
        return _Record(flat["id"][s], flat["daughter1"][s], flat["daughter2"][s], flat["px"][s], flat["py"][s],
                       flat["pz"][s], flat["e"][s], flat["m"][s], is_resonance)

    return record


class _LeadingJets:
    """Leading anti-kT jet of each event's particle-flow candidates (scikit-hep FastJet, C++, on a
    whole batch): arrays over the events that have one: ``event``, ``pt``, ``eta``, ``phi``,
    ``mass``, ``rap``; :meth:`members` gives a jet's candidates as indices into ``pflow``."""

    def __init__(self, pflow, n_events: int, radius: float, pt_min: float):
        import awkward as ak
        import fastjet

        counts = np.bincount(pflow.event, minlength=n_events)
        px, py = pflow.pt * np.cos(pflow.phi), pflow.pt * np.sin(pflow.phi)
        pz = pflow.pt * np.sinh(pflow.eta)
        particles = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": pflow.energy}), counts)
        definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
        global _banner_shown
        if _banner_shown:
            sequence = fastjet.ClusterSequence(particles, definition)
            jets = sequence.inclusive_jets(min_pt=pt_min)
        else:  # FastJet prints its banner on first use in a process: keep stdout for the command's output
            from jettf.generate.pythia import _stdout_to_devnull

            with _stdout_to_devnull():
                sequence = fastjet.ClusterSequence(particles, definition)
                jets = sequence.inclusive_jets(min_pt=pt_min)
                _flush_c_stdout()
            _banner_shown = True
        index = sequence.constituent_index(min_pt=pt_min)  # same jets, same order
        jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(jets[f])).astype(np.float64) for f in ("px", "py", "pz", "E"))
        n_jets = ak.to_numpy(ak.num(jets))
        owner = np.repeat(np.arange(n_events), n_jets)
        jpt = np.hypot(jpx, jpy)
        order = np.lexsort((jpt, owner))  # by event, then pt: an event's leading jet is its last
        has = n_jets > 0
        lead = order[np.cumsum(n_jets)[has] - 1]
        self.event = np.flatnonzero(has)
        self.pt = jpt[lead]
        self.eta = np.arcsinh(jpz[lead] / self.pt)
        self.phi = np.arctan2(jpy[lead], jpx[lead])
        self.mass = np.sqrt(np.maximum(je[lead] ** 2 - self.pt**2 - jpz[lead] ** 2, 0.0))
        self.rap = 0.5 * np.log(np.maximum(je[lead] + jpz[lead], 1e-300) / np.maximum(je[lead] - jpz[lead], 1e-300))
        self._lead = lead
        self._flat = ak.to_numpy(ak.flatten(index, axis=None))
        self._offsets = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.flatten(ak.num(index, axis=2))))])
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def members(self, i: int) -> np.ndarray:
        """Indices into ``pflow`` of the candidates of the ``i``-th leading jet."""
        j = self._lead[i]
        return self._flat[self._offsets[j]:self._offsets[j + 1]] + self._starts[self.event[i]]


def generate_shard_detector(
    sample: str,
    class_name: str,
    n_jets: int,
    seed: int,
    detector: str,
    *,
    extra_settings: Sequence[str] = (),
    progress: Optional[Callable[[int], None]] = None,
    batch_events: int = BATCH_EVENTS,
):
    """Detector-level version of :func:`jettf.generate.pythia.generate_shard` (same cards, same cuts).

    Returns a :class:`~jettf.generate.pythia.ShardResult` whose jets' constituents are the
    particle-flow candidates of the leading detector-level jet (pt-sorted, ``pid`` PF-like ids,
    ``charge``, ``subdetector`` TRACK/ECAL/HCAL), jet kinematics from the clustered jet.
    """
    from jettf.generate.pythia import ShardResult, _init_pythia
    from jettf.generate.samples import get_card
    from jettf.jets import JetBatch

    card = get_card(sample)
    jet_class = card.jet_class(class_name)
    det = get_detector_card(detector)
    start, cpu_start = time.perf_counter(), time.process_time()
    pythia = _init_pythia(card.pythia_settings(class_name) + tuple(extra_settings), seed)
    rng = np.random.default_rng(seed)
    data = pythia.particleData
    resonance_cache = {}

    def is_resonance(pid: int) -> bool:
        if pid not in resonance_cache:
            resonance_cache[pid] = bool(data.isResonance(pid))
        return resonance_cache[pid]

    pt_lo, pt_hi = card.pt_range
    r2 = card.match_radius**2
    parts, truth, pthat = [], [], []
    events = failed = 0
    max_events = 10_000 + 2_000 * n_jets
    label = card.class_names.index(class_name)
    while len(truth) < n_jets:
        if events >= max_events:
            raise RuntimeError(
                f"{sample}/{class_name} (--detector {det.name}): only {len(truth)} of {n_jets} jets passed the "
                f"selection in {events} events; check the card's process and cuts"
            )
        batch = pythia.nextBatch(batch_events)
        failed += batch_events - len(batch)
        events += batch_events
        if len(batch) == 0:
            continue
        px, py, pz, e, pid, event = pythia_final_state(batch)
        particles = Particles.from_cartesian(px, py, pz, e, pid, event, len(batch))
        out = simulate(particles, det, rng)
        records = _records(batch, is_resonance)
        info_pt2 = np.asarray(batch["info"]["pT2Hat"], dtype=np.float64)
        lead = _LeadingJets(out.pflow, len(batch), card.jet_radius, 0.5 * pt_lo)
        passed = (lead.pt >= pt_lo) & (lead.pt < pt_hi)
        if card.abs_eta_max is not None:
            passed &= np.abs(lead.eta) < card.abs_eta_max
        if card.abs_y_max is not None:
            passed &= np.abs(lead.rap) < card.abs_y_max
        for i in np.flatnonzero(passed):  # per selected jet: truth matching on its event record
            k = lead.event[i]
            matched = match_record(records(k), jet_class, lead.rap[i], lead.phi[i], r2)
            if matched is None:
                continue
            members = lead.members(i)
            chosen = out.pflow.select(members)._replace(event=np.zeros(len(members), dtype=np.int64))
            jet = tuple(np.array([a[i]]) for a in (lead.pt, lead.eta, lead.phi, lead.mass))
            parts.append(pad_candidates(chosen, 1, card.max_constituents, jet, labels=[label],
                                        class_names=card.class_names))
            truth.append(matched)
            pthat.append(np.sqrt(info_pt2[k]))
            if progress is not None:
                progress(1)
            if len(truth) == n_jets:
                break
    if parts:
        jets = JetBatch.concatenate(parts)
    else:
        jets = pad_candidates(out.pflow.select(np.zeros(0, dtype=np.int64)), 0, card.max_constituents,
                              tuple(np.zeros(0) for _ in range(4)), labels=np.zeros(0, np.int64),
                              class_names=card.class_names)
    return ShardResult(
        batch=jets,
        truth=np.asarray(truth, dtype=np.float64).reshape(-1, 4),
        pthat=np.asarray(pthat, dtype=np.float64),
        events=events,
        failed=failed,
        seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu_start,
    )
