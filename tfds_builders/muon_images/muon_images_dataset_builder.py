"""004's muon candidates (Collado thesis, chapter 4): 32 x 32 E_T images around the muon, isolation cones, cells."""

from __future__ import annotations

import tensorflow_datasets as tfds

from jettf.calo.cards import MUONS
from jettf.data import sources
from jettf.data.lepton_builder import LeptonImageBuilder, lepton_config
from jettf.images import ImageSpec

# 004 section 4.3.1: 32 x 32 pixels over [-0.45, 0.45]^2 in (delta eta, delta phi) around the muon's impact point;
# E_T of ECAL cells and HCAL towers together.
_IMAGE = ImageSpec(npix=32, extent=0.45, channels=("calo_et",))


def _config(name, description, n_jets=None):
    # The file's cells (ECAL cells and HCAL towers within the cone, 384 at most; ~107 per muon with <mu> = 50).
    return lepton_config(name, description, _IMAGE, max_cells=384, n_jets=n_jets)


class Builder(LeptonImageBuilder):
    """Prompt vs non-prompt muons: ``muons.h5`` (:mod:`jettf.io.leptons`), split 60/20/20 per class in file order."""

    VERSION = tfds.core.Version("2.1.0")
    RELEASE_NOTES = {"2.0.0": "First release (jettf record format 2.0.0): 32x32 E_T image, 18 isolation cones, "
                              "per-candidate weights, cells.",
                     "2.1.0": "Cells are the file's ECAL cells and HCAL towers within the cone, each once, no longer "
                              "the image's non-zero pixels (which share each cell's E_T among the pixels it overlaps)."}
    BUILDER_CONFIGS = [
        _config("image", "32x32 E_T images within delta-R < 0.45 of the muon, <mu> = 50 (004 section 4.3)"),
        _config("quick", "32x32 E_T muon images, 600 candidates per class (--quick, tests)", 600),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "image"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    004's muon candidates were never published. Put a muons.h5 in jettf's layout
    (jettf.io.leptons: image_et, cells, y, pt, eta, weight) in a directory and pass it as
    --manual-dir; without one, python -m jettf.generate muons makes the sample (Pythia 8
    Z'(20 GeV) -> mu+ mu- against b b-bar with muons from heavy-flavour decays, <mu> = 50
    pile-up, through jettf's atlas detector card).
    """
    HOMEPAGE = "https://escholarship.org/uc/item/0dv9n88t"

    SAMPLE = "muons"
    CLASS_NAMES = MUONS.class_names
    CLASS_DESCRIPTIONS = {
        "non-prompt": "a muon from a heavy-flavour decay in b b-bar events, y = 0",
        "prompt": "a prompt muon from Z'(20 GeV) -> mu+ mu-, y = 1",
    }
    SOURCE_FEATURES = sources.MUON_SOURCE_FEATURES
    GENERATED_N_JETS = 4000

    @staticmethod
    def read_range(path, start, stop):
        return sources.muons_range(path, start, stop)
