"""The `muon_images` TFDS builder."""
