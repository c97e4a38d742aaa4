"""Centre crop of images, for numpy arrays and TensorFlow tensors alike."""

from __future__ import annotations

__all__ = ["center_crop"]


def center_crop(images, size: int):
    """The central ``size x size`` pixels of ``[..., H, W, C]`` images (numpy or TensorFlow).

    The crop starts at ``(H - size) // 2``, as ``keras.layers.CenterCrop`` does, so
    35 -> 28 (002 section 2.2) drops 3 rows before and 4 after. 002 crops after
    per-pixel standardization, which is where the input pipeline calls this.
    """
    height, width = images.shape[-3], images.shape[-2]
    if height is None or width is None:  # unknown static shape inside a tf.function
        import tensorflow as tf

        height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    elif not 1 <= size <= min(height, width):
        raise ValueError(
            f"center_crop: size must be in [1, {min(height, width)}] for {height}x{width} images, got {size}"
        )
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size, :]
