"""The `cms_quark_gluon_images` TFDS builder."""
