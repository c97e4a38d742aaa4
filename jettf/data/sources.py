"""Row ranges of public files, for the builders' independent shard tasks (through ``jettf.io``).

Bad jets are not skipped (``skip_bad=False``): a public file with NaNs or empty
jets stops the build with ``jettf.io``'s error naming the file and row, rather
than silently shifting rows between the planning pass and the shard tasks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jettf.calo.cards import ELECTRON_FEATURES, ISOLATION_RADII
from jettf.jets import JetBatch

__all__ = ["jetnet_range", "top_tagging_range", "quark_gluon_range", "cms_quark_gluon_range", "electrons_range",
           "muons_range", "ELECTRON_SOURCE_FEATURES", "MUON_SOURCE_FEATURES", "count_rows"]


def jetnet_range(path: str, start: int, stop: int, class_names) -> JetBatch:
    """Rows of one JetNet class file, labelled by the file's class within ``class_names``."""
    from jettf.io import read_jetnet

    name = Path(path).stem.rstrip("0123456789")
    batch = read_jetnet(path, start=start, max_jets=stop - start)
    return batch.with_labels(list(class_names).index(name), class_names)


def top_tagging_range(path: str, start: int, stop: int) -> JetBatch:
    from jettf.io import read_top_tagging

    return read_top_tagging(path, start=start, max_jets=stop - start)


def quark_gluon_range(path: str, start: int, stop: int) -> JetBatch:
    """Rows of one quark/gluon ``.npz`` (rows before ``start`` are decompressed and dropped,
    so the builder uses whole-file shards)."""
    from jettf.io import read_quark_gluon

    return read_quark_gluon(path, start=start, max_jets=stop - start)


def cms_quark_gluon_range(path: str, start: int, stop: int):
    """Rows of a CMS E2E file (003) as :class:`jettf.data.records.ImageRows`: the (tracks, ecal, hcal) jet views and,
    in generated files, the generator-level (em, had) views of the same jets; jet (pt, 0, 0, m0) (the public layout
    has no eta, phi). Read in chunks of 256 images; the channel-order and label checks run on the file's first rows
    (``start == 0``)."""
    import numpy as np

    from jettf.data.records import ImageRows
    from jettf.io import read_cms_quark_gluon
    from jettf.io.cms_quark_gluon import image_fields

    fields = ["X_jets"] + [f for f in ("X_jets_gen",) if f in image_fields(path)]
    readers = [read_cms_quark_gluon(path, field=f, start=start, max_jets=stop - start, chunk_size=256,
                                    check=start == 0) for f in fields]
    parts = []
    for chunks in zip(*readers):
        first = chunks[0]
        zeros = np.zeros(len(first), np.float32)
        parts.append(ImageRows.from_dense(np.concatenate([c.images for c in chunks], axis=-1),
                                          sum((c.channels for c in chunks), ()), first.labels,
                                          np.stack([first.pt, zeros, zeros, first.m0], axis=-1), first.class_names))
    return ImageRows.concatenate(parts)


#: The global features of ``electron_images``: 004's seven expert features (eq. 3.1-3.4) and the candidate mass.
ELECTRON_SOURCE_FEATURES = ELECTRON_FEATURES + ("mass",)
#: The global features of ``muon_images``: the isolation I_mu(R0) of 004's 18 cones, 0.025 <= R0 <= 0.45.
MUON_SOURCE_FEATURES = tuple(f"iso_{r:g}" for r in ISOLATION_RADII)


def electrons_range(path: str, start: int, stop: int, max_cells: int = 256):
    """Rows of ``electrons.h5`` (004 chapter 3) as :class:`jettf.data.records.ImageRows`: the 31 x 31 ECAL image
    (channels ``ecal_et``, ``ecal``: E_T and E) and, as the second image ``hcal``, the 8 x 8 HCAL towers (``hcal_et``,
    ``hcal``); the expert features and the mass (:data:`ELECTRON_SOURCE_FEATURES`) computed from the images; the
    stored weights; cells: the ``max_cells`` hardest non-zero ECAL cells and HCAL towers (E_T, delta eta, delta phi
    from the ECAL image centre, E); jet = (track pt, track eta, 0, mass)."""
    from jettf.calo.cards import ELECTRONS
    from jettf.calo.images import pixel_cells
    from jettf.detector.cards import CARDS
    from jettf.data.records import ImageRows
    from jettf.features.calorimeter import candidate_mass, electron_features
    from jettf.io.leptons import read_electrons

    s = read_electrons(path, start=start, max_rows=stop - start)
    labels = s.labels
    features = electron_features(s["ecal_e"], s["ecal_et"], s["hcal_et"])
    mass = candidate_mass(s["ecal_et"], s["hcal_et"], s["hcal_offset"])
    card = CARDS[ELECTRONS.detector]
    ecal = pixel_cells(s["ecal_et"], s["eta"], extent=(ELECTRONS.ecal_pixels * card.ecal.deta / 2,
                                                       ELECTRONS.ecal_pixels * card.ecal.dphi / 2))
    hcal = pixel_cells(s["hcal_et"], s["eta"], extent=(ELECTRONS.hcal_pixels * card.hcal.deta / 2,
                                                       ELECTRONS.hcal_pixels * card.hcal.dphi / 2))
    hcal[..., 1:3] += np.where(hcal[..., :1] > 0, s["hcal_offset"][:, None, :], 0.0)
    cells = np.concatenate([ecal, hcal], axis=1)
    order = np.argsort(-cells[..., 0], axis=1, kind="stable")[:, :max_cells]
    cells = np.take_along_axis(cells, order[..., None], axis=1)
    zeros = np.zeros(len(s), np.float32)
    jet = np.stack([s["pt"], s["eta"], zeros, mass], axis=-1)
    hcal_rows = ImageRows.from_dense(np.stack([s["hcal_et"], s["hcal_e"]], axis=-1), ("hcal_et", "hcal"), labels, jet)
    return ImageRows.from_dense(np.stack([s["ecal_et"], s["ecal_e"]], axis=-1), ("ecal_et", "ecal"), labels, jet,
                                ELECTRONS.class_names, features=np.concatenate([features, mass[:, None]], axis=1),
                                weight=s["weight"], cells=cells, extra={"hcal": hcal_rows})


def muons_range(path: str, start: int, stop: int, max_cells: int = 384):
    """Rows of ``muons.h5`` (004 chapter 4) as :class:`jettf.data.records.ImageRows`: the 32 x 32 E_T image (channel
    ``calo_et``) within delta-R < 0.45 of the muon; the 18 isolation cones computed from its pixels
    (:data:`MUON_SOURCE_FEATURES`); the stored weights; cells: the file's ``max_cells`` hardest ECAL cells and HCAL
    towers (E_T, delta eta, delta phi from the muon, E); jet = (muon pt, muon eta, 0, 0)."""
    from jettf.calo.cards import MUONS
    from jettf.data.records import ImageRows
    from jettf.features.calorimeter import isolation_cones
    from jettf.io.leptons import read_muons

    s = read_muons(path, start=start, max_rows=stop - start)
    zeros = np.zeros(len(s), np.float32)
    return ImageRows.from_dense(
        s["image_et"][..., None], ("calo_et",), s.labels,
        np.stack([s["pt"], s["eta"], zeros, zeros], axis=-1), MUONS.class_names,
        features=isolation_cones(s["image_et"], s["pt"], cone=MUONS.cone), weight=s["weight"],
        cells=s["cells"][:, :max_cells, :4])


def count_rows(reader, path: str) -> int:
    """Rows in a file, from its header (the reader's lazy chunk iterator reads no data)."""
    return int(reader(path, chunk_size=1 << 30).n_rows)
