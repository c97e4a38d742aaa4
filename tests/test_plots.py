"""jettf.plots: each figure is a non-empty PNG of figsize * dpi pixels, written atomically."""

import struct

import numpy as np
import pytest

from jettf import plots

NAMES = ["g", "q", "t", "W", "Z"]


def _png_size(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def _check(path, returned, size):
    assert returned == path
    assert path.stat().st_size > 5000  # more than a blank canvas
    assert _png_size(path) == size
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporaries left behind


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 600)
    logits = rng.normal(size=(y.size, 5))
    logits[np.arange(y.size), y] += 2.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    qcd = rng.exponential(1.0, (40, 16, 16)) * (rng.random((40, 16, 16)) < 0.1)
    qcd[:, 8, 8] += 50
    top = rng.exponential(1.0, (30, 16, 16, 2)) * (rng.random((30, 16, 16, 2)) < 0.2)
    top[:, 5, 10] += 20
    return qcd, top


def test_roc_and_rejection(tmp_path, predictions):
    y, p = predictions
    path = tmp_path / "roc" / "roc.png"
    _check(path, plots.plot_roc(y, p, NAMES, path, figsize=(5, 4), dpi=80), (400, 320))
    binary = (y == 2).astype(int)
    p2 = np.stack([1 - p[:, 2], p[:, 2]], axis=1)
    path = tmp_path / "rej" / "rejection.png"
    returned = plots.plot_rejection(binary, {"model A": p2, "model B": p2**2 / (p2**2).sum(1, keepdims=True)},
                                    ["qcd", "top"], path, dpi=50)
    _check(path, returned, (300, 250))


def test_confusion_matrix(tmp_path, predictions):
    y, p = predictions
    path = tmp_path / "cm.png"
    _check(path, plots.plot_confusion_matrix(y, p, NAMES, str(path)), (600, 500))
    with pytest.raises(ValueError, match="class_names: expected 5 names"):
        plots.plot_confusion_matrix(y, p, NAMES[:3], tmp_path / "bad.png")


def test_training_curves(tmp_path):
    folds = [  # the last fold stopped early: curves of different lengths
        {"loss": [1.0, 0.8, 0.7 + k / 20][: 3 - k // 2], "val_loss": [1.1, 0.9, 0.85][: 3 - k // 2],
         "accuracy": [0.5, 0.6, 0.65][: 3 - k // 2], "val_accuracy": [0.5, 0.6, 0.6][: 3 - k // 2]}
        for k in range(3)
    ]
    path = tmp_path / "curves.png"
    _check(path, plots.plot_training_curves(folds, path, dpi=60), (600, 240))
    path = tmp_path / "one" / "curves.png"
    _check(path, plots.plot_training_curves(folds[0], path, metric_names=["loss"], figsize=(4, 3), dpi=100), (400, 300))
    with pytest.raises(ValueError, match="histories: expected a history dict"):
        plots.plot_training_curves([], tmp_path / "bad.png")


def test_average_and_difference_images(tmp_path, images):
    qcd, top = images
    path = tmp_path / "avg" / "average.png"
    returned = plots.plot_average_images({"QCD": qcd, "top": top}, (-0.8, 0.8, -0.8, 0.8), path, dpi=50)
    _check(path, returned, (400, 175))
    path = tmp_path / "diff" / "difference.png"
    returned = plots.plot_difference_image(top, qcd, 0.8, path, labels=("top", "QCD"), channel=1, dpi=80)
    _check(path, returned, (400, 320))
    with pytest.raises(ValueError, match=r"images_b: image shape \(8, 8\) differs"):
        plots.plot_difference_image(top, qcd[:, :8, :8], 0.8, tmp_path / "bad.png")
    for extent in ((0.8, -0.8, 0, 1), None, 0.0):
        with pytest.raises(ValueError, match="extent: expected"):
            plots.plot_average_images({"QCD": qcd}, extent, tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"images_by_class\['QCD'\]: expected images \[N, H, W\]"):
        plots.plot_average_images({"QCD": qcd[0, 0]}, 0.8, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
