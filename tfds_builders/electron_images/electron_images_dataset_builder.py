"""004's electron candidates (Collado thesis, chapter 3): 31 x 31 ECAL and 8 x 8 HCAL images, expert features."""

from __future__ import annotations

import tensorflow_datasets as tfds

from jettf.calo.cards import ELECTRONS
from jettf.data import sources
from jettf.data.lepton_builder import LeptonImageBuilder, lepton_config
from jettf.images import ImageSpec

# 004 section 3.3 / the atlas card: ECAL cells of (delta eta, delta phi) = (0.025, pi/126), HCAL towers of
# (0.1, pi/31); one pixel is one cell. ImageSpec is square: its half-width is the eta one (31 x 0.025 / 2; the phi
# half-width 31 x pi/126 / 2 = 0.3865 differs by 0.3%), and the pixels are stored as read, never re-binned.
_ECAL_EXTENT, _HCAL_EXTENT = 31 * 0.025 / 2, 8 * 0.1 / 2


def _specs(quantity: str):
    """The ECAL image and the second image ``hcal`` in ``quantity`` (E_T ``"et"`` or energy ``"e"``)."""
    ecal, hcal = {"et": ("ecal_et", "hcal_et"), "e": ("ecal", "hcal")}[quantity]
    return (ImageSpec(npix=31, extent=_ECAL_EXTENT, channels=(ecal,)),
            {"hcal": ImageSpec(npix=8, extent=_HCAL_EXTENT, channels=(hcal,))})


def _config(name, description, quantity, n_jets=None):
    image, extra = _specs(quantity)
    return lepton_config(name, description, image, extra_image_specs=extra, max_cells=256, n_jets=n_jets)


class Builder(LeptonImageBuilder):
    """Electrons vs jets: ``electrons.h5`` (:mod:`jettf.io.leptons`), split 60/20/20 per class in file order."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {"2.0.0": "First release (jettf record format 2.0.0): ECAL image, second image 'hcal', the seven "
                              "expert features and the mass, per-candidate weights, cells."}
    BUILDER_CONFIGS = [
        _config("et", "31x31 ECAL and 8x8 HCAL E_T images (004 section 3.3)", "et"),
        _config("energy", "31x31 ECAL and 8x8 HCAL energy images", "e"),
        _config("quick", "31x31 ECAL and 8x8 HCAL E_T images, 600 candidates per class (--quick, tests)", "et", 600),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "et"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    jettf reads electron candidates in its own layout only (004's chapter-3 data on the UCI
    ML-in-physics portal is in another format). Put an electrons.h5 in jettf's layout
    (jettf.io.leptons: ecal_et, ecal_e, hcal_et, hcal_e, hcal_offset, y, pt, eta, weight) in a
    directory and pass it as --manual-dir; without one, python -m jettf.generate electrons
    makes the sample (Pythia 8 Z'(20 GeV) -> e+ e- against b b-bar with electrons from b
    decays, through jettf's atlas detector card).
    """
    HOMEPAGE = "https://escholarship.org/uc/item/0dv9n88t"

    SAMPLE = "electrons"
    CLASS_NAMES = ELECTRONS.class_names
    CLASS_DESCRIPTIONS = {
        "jet": "an electron candidate inside a jet (an electron from a b-hadron decay in b b-bar events), y = 0",
        "electron": "a prompt electron from Z'(20 GeV) -> e+ e-, y = 1",
    }
    SOURCE_FEATURES = sources.ELECTRON_SOURCE_FEATURES
    GENERATED_N_JETS = 3000

    @staticmethod
    def read_range(path, start, stop):
        return sources.electrons_range(path, start, stop)
