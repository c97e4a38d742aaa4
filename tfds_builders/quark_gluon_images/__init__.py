"""The `quark_gluon_images` TFDS builder."""
