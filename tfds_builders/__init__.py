"""TFDS builders of jettf, in TFDS' own layout: ``import tfds_builders`` registers them.

- ``jetnet_images``: JetNet g/q/t/W/Z jets (000).
- ``top_tagging_images``: the Top Quark Tagging Reference Dataset (002).
- ``quark_gluon_images``: EnergyFlow's Pythia Z+jet quark/gluon jets.
- ``cms_quark_gluon_images``: 003's CMS end-to-end quark/gluon jet images (pre-rendered tracks/ECAL/HCAL views).
- ``electron_images``: 004's electron candidates vs jets (31x31 ECAL + 8x8 HCAL images, expert features, weights).
- ``muon_images``: 004's prompt vs non-prompt muons (32x32 E_T images, isolation cones, cells, weights).

Build one with ``python -m jettf.data build NAME[/CONFIG] --data-dir DIR``; then
``tfds.load("NAME/CONFIG", data_dir=DIR)`` works after ``import tfds_builders``.
The shared machinery is :mod:`jettf.data.builder_base`.
"""

from tfds_builders.cms_quark_gluon_images.cms_quark_gluon_images_dataset_builder import Builder as CmsQuarkGluonImages
from tfds_builders.electron_images.electron_images_dataset_builder import Builder as ElectronImages
from tfds_builders.jetnet_images.jetnet_images_dataset_builder import Builder as JetnetImages
from tfds_builders.muon_images.muon_images_dataset_builder import Builder as MuonImages
from tfds_builders.quark_gluon_images.quark_gluon_images_dataset_builder import Builder as QuarkGluonImages
from tfds_builders.top_tagging_images.top_tagging_images_dataset_builder import Builder as TopTaggingImages

__all__ = ["JetnetImages", "TopTaggingImages", "QuarkGluonImages", "CmsQuarkGluonImages", "ElectronImages",
           "MuonImages"]
