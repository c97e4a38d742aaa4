"""The `top_tagging_images` TFDS builder."""
