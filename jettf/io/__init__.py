"""Readers and writers of the three public jet datasets; nothing else in jettf parses files.

- JetNet (``g.hdf5`` ... ``z.hdf5``, ``g150.hdf5`` ...): :func:`read_jetnet`, :func:`write_jetnet`
- Top Quark Tagging Reference Dataset (``train.h5`` ...): :func:`read_top_tagging`, :func:`write_top_tagging`
- EnergyFlow quark/gluon (``QG_jets*.npz``): :func:`read_quark_gluon`, :func:`write_quark_gluon`
- 003's CMS E2E quark/gluon images (``quark-gluon_data-set_n139306.hdf5``, ``*.parquet``):
  :func:`read_cms_quark_gluon` (a :class:`CMSImages` of images, not a JetBatch), :func:`write_cms_quark_gluon`
- 004's lepton candidates (``electrons.h5``, ``muons.h5``): :func:`read_electrons`, :func:`read_muons` (a
  :class:`CaloSample` of calorimeter images, not a JetBatch), :func:`write_electrons`, :func:`write_muons`

Readers return one :class:`~jettf.jets.JetBatch`, or with ``chunk_size`` a
:class:`JetChunks` iterator of batches of bounded size. Files that break
their format raise :class:`FileFormatError` (a ValueError) naming the file,
the field and what was expected, and bad values raise it naming the file,
the row and the field (a column, a particle slot) with the value. Bad values
are NaN/inf, and values that cannot be physical: a constituent with negative
or zero energy or pt (only all-zero slots are padding; a negative value is
never taken for padding), a JetNet particle with ptrel <= 0 or a jet with
pt <= 0. A file with no jets is an error too. With ``skip_bad=True``
individual bad jets (bad values, no constituents) are dropped instead and
counted in a :class:`SkippedJetsWarning`. Writers produce files the public
loaders read (``h5py``, ``pandas.read_hdf(path, key="table")``,
``numpy.load``) and write them atomically and reproducibly (no timestamps:
the same jets give the same bytes). Files written for ``jettf.generate``
carry its settings (:func:`generated_settings` reads them; None for public
files).
"""

from jettf.io._common import FileFormatError, JetChunks, SkippedJetsWarning
from jettf.io.cms_quark_gluon import (
    CMS_CHANNELS, CMS_QUARK_GLUON_CLASSES, CMSImages, check_conventions, read_cms_quark_gluon, write_cms_quark_gluon,
)
from jettf.io.jetnet import JETNET_CLASSES, jetnet_filename, read_jetnet, write_jetnet
from jettf.io.leptons import CaloSample, read_electrons, read_muons, write_electrons, write_muons
from jettf.io.provenance import GENERATED_MARK, generated_settings
from jettf.io.quark_gluon import QUARK_GLUON_CLASSES, read_quark_gluon, write_quark_gluon
from jettf.io.top_tagging import TOP_TAGGING_CLASSES, TOP_TAGGING_COLUMNS, read_top_tagging, write_top_tagging

__all__ = [
    "read_jetnet",
    "read_top_tagging",
    "read_quark_gluon",
    "read_cms_quark_gluon",
    "write_jetnet",
    "write_top_tagging",
    "write_quark_gluon",
    "write_cms_quark_gluon",
    "read_electrons",
    "read_muons",
    "write_electrons",
    "write_muons",
    "CaloSample",
    "CMSImages",
    "check_conventions",
    "CMS_QUARK_GLUON_CLASSES",
    "CMS_CHANNELS",
    "jetnet_filename",
    "JETNET_CLASSES",
    "TOP_TAGGING_CLASSES",
    "TOP_TAGGING_COLUMNS",
    "QUARK_GLUON_CLASSES",
    "JetChunks",
    "FileFormatError",
    "SkippedJetsWarning",
    "generated_settings",
    "GENERATED_MARK",
]
