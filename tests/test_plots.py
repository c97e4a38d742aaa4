"""jettf.plots and the report tables: what is drawn and printed, checked through matplotlib's objects and values."""

import struct

import numpy as np
import pytest
from matplotlib import colors
from matplotlib.figure import Figure
from sklearn import metrics as skm

from jettf import plots
from jettf.training import report

NAMES = ["g", "q", "t", "W", "Z"]


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions save, in order (each still open for inspection)."""
    figures = []
    save = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def _png_size(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def _written(path, returned, size):
    assert returned == path and _png_size(path) == size
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporaries left behind


@pytest.fixture(scope="module")
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 600)
    logits = rng.normal(size=(y.size, 5))
    logits[np.arange(y.size), y] += 2.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_roc_curves_are_sklearns_with_the_auc_in_the_legend(tmp_path, predictions, drawn):
    y, p = predictions
    path = tmp_path / "roc" / "roc.png"
    _written(path, plots.plot_roc(y, p, NAMES, path, figsize=(5, 4), dpi=80), (400, 320))
    ax = drawn[0].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for c, name in enumerate(NAMES):
        auc = skm.roc_auc_score(y == c, p[:, c])
        line = lines[f"{name} (AUC {auc:.4f})"]
        fpr, tpr, _ = skm.roc_curve(y == c, p[:, c], drop_intermediate=False)
        np.testing.assert_allclose(line.get_xdata(), fpr)
        np.testing.assert_allclose(line.get_ydata(), tpr)
    assert "FPR" in ax.get_xlabel() and "TPR" in ax.get_ylabel()


def test_rejection_is_one_over_eps_b_on_a_log_scale(tmp_path, predictions, drawn):
    y, p = predictions
    binary = (y == 2).astype(int)
    p2 = np.stack([1 - p[:, 2], p[:, 2]], axis=1)
    path = tmp_path / "rej" / "rejection.png"
    _written(path, plots.plot_rejection(binary, {"model A": p2}, ["qcd", "top"], path, dpi=50), (300, 250))
    ax = drawn[0].axes[0]
    assert ax.get_yscale() == "log"
    line = next(line for line in ax.get_lines() if line.get_label().startswith("model A"))
    fpr, tpr, _ = skm.roc_curve(binary, p2[:, 1], drop_intermediate=False)
    np.testing.assert_allclose(line.get_xdata(), tpr[fpr > 0])
    np.testing.assert_allclose(line.get_ydata(), 1 / fpr[fpr > 0])


def test_confusion_matrix_draws_row_normalised_fractions(tmp_path, predictions, drawn):
    y, p = predictions
    path = tmp_path / "cm.png"
    _written(path, plots.plot_confusion_matrix(y, p, NAMES, str(path)), (600, 500))
    ax = drawn[0].axes[0]
    expected = skm.confusion_matrix(y, p.argmax(1), normalize="true")
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    assert [t.get_text() for t in ax.texts][:2] == [f"{expected[0, 0]:.2f}", f"{expected[0, 1]:.2f}"]
    with pytest.raises(ValueError, match="class_names: expected 5 names"):
        plots.plot_confusion_matrix(y, p, NAMES[:3], tmp_path / "bad.png")


def test_training_curves_draw_each_history(tmp_path, drawn):
    folds = [  # the last fold stopped early: curves of different lengths
        {"loss": [1.0, 0.8, 0.7 + k / 20][: 3 - k // 2], "val_loss": [1.1, 0.9, 0.85][: 3 - k // 2],
         "accuracy": [0.5, 0.6, 0.65][: 3 - k // 2], "val_accuracy": [0.5, 0.6, 0.6][: 3 - k // 2]}
        for k in range(3)
    ]
    path = tmp_path / "curves.png"
    _written(path, plots.plot_training_curves(folds, path, dpi=60), (600, 240))
    loss_ax = drawn[0].axes[0]
    assert loss_ax.get_title() == "loss"
    drawn_curves = [list(line.get_ydata()) for line in loss_ax.get_lines()]
    for h in folds:
        assert h["loss"] in drawn_curves and h["val_loss"] in drawn_curves
    assert [t.get_text() for t in drawn[0].axes[-1].get_legend().get_texts()] == [
        "train", "validation", "fold 1", "fold 2", "fold 3"]
    # A run's stages are labelled by their names (the last stage trains on all jets: it is not a fold).
    stages = dict(zip(("fold_0", "fold_1", "final"), folds))
    plots.plot_training_curves(stages, tmp_path / "stages.png", dpi=60)
    assert [t.get_text() for t in drawn[1].axes[-1].get_legend().get_texts()] == [
        "train", "validation", "fold_0", "fold_1", "final"]
    assert [list(line.get_ydata()) for line in drawn[1].axes[0].get_lines()] == drawn_curves
    with pytest.raises(ValueError, match="histories: expected a history dict"):
        plots.plot_training_curves([], tmp_path / "bad.png")


def test_average_images_draw_each_class_and_channel_mean_on_a_log_scale(tmp_path, drawn):
    rng = np.random.default_rng(1)
    means = {"QCD": rng.exponential(1.0, (16, 12, 2)), "top": rng.exponential(2.0, (16, 12, 2))}
    means["QCD"][3, 4, 0] = 0.0  # zero on average: drawn as the bottom colour, not log(0)
    path = tmp_path / "avg" / "average.png"
    returned = plots.plot_average_images(means, (-0.8, 0.8, -0.6, 0.6), path, channel_names=["pt", "energy"],
                                         units=["GeV", "GeV"], dpi=50)
    _written(path, returned, (400, 350))
    fig = drawn[0]
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 4  # 2 channels (rows) x 2 classes (columns)
    for ax in image_axes:
        cls, channel = ax.get_title().split(": ")
        k = ["pt", "energy"].index(channel)
        shown = ax.images[0].get_array()
        expected = np.where(means[cls][..., k] > 0, means[cls][..., k], np.nan).T  # eta along x
        np.testing.assert_allclose(shown.filled(np.nan), expected, equal_nan=True)
        assert isinstance(ax.images[0].norm, colors.LogNorm)
        assert ax.images[0].get_extent() == [-0.8, 0.8, -0.6, 0.6]
        assert ax.get_xlabel() == r"$\eta$" and ax.get_ylabel() == r"$\phi$ [rad]"
    colorbar_labels = {ax.get_ylabel() for ax in fig.axes if not ax.images}
    assert colorbar_labels == {"mean pt [GeV]", "mean energy [GeV]"}
    # A [H, W, C] mean image is never averaged again (the stripes bug): a 2-D mean stays 2-D.
    plots.plot_average_images({"QCD": means["QCD"][..., 0]}, 0.8, tmp_path / "one.png")
    assert drawn[-1].axes[0].images[0].get_array().shape == (12, 16)
    with pytest.raises(ValueError, match="before standardization"):
        plots.plot_average_images({"QCD": -np.ones((4, 4))}, 0.8, tmp_path / "bad.png")
    for extent in ((0.8, -0.8, 0, 1), None, 0.0):
        with pytest.raises(ValueError, match="extent: expected"):
            plots.plot_average_images(means, extent, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_difference_image_is_the_normalised_difference_on_a_symmetric_scale(tmp_path, drawn):
    rng = np.random.default_rng(2)
    a, b = rng.exponential(1.0, (8, 8)), rng.exponential(1.0, (8, 8))
    path = tmp_path / "diff.png"
    plots.plot_difference_image(a, b, 0.8, path, labels=("top", "QCD"), dpi=80)
    ax = drawn[0].axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), (a / a.sum() - b / b.sum()).T)
    norm = ax.images[0].norm
    assert isinstance(norm, colors.SymLogNorm) and norm.vmin == -norm.vmax
    with pytest.raises(ValueError, match=r"mean_b: image shape \(4, 4\) differs"):
        plots.plot_difference_image(a, b[:4, :4], 0.8, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="cannot normalise"):
        plots.plot_difference_image(-a, b, 0.8, tmp_path / "bad.png")


# ------------------------------------------------------------------------------------------ report tables
def test_report_numbers_read_as_numbers():
    assert report._fmt(2000.0) == "2,000" and report._fmt(1530.4) == "1,530" and report._fmt(242.26) == "242.3"
    assert report._fmt(0.93281) == "0.9328" and report._fmt(12) == "12" and report._fmt(float("inf")) == "inf"
    test = {"accuracy": 0.9, "auc": 0.95, "rejection": {"0.3": 2000.0, "0.5": 120.5},
            "inverse_fpr_at_tpr_0.7": 33.3, "max_sic": 3.1,
            "ci": {"auc": [0.94, 0.96], "rejection": {"0.3": [1500.0, 2500.0], "0.5": [100.0, 140.0]},
                   "inverse_fpr_at_tpr_0.7": [30.0, 36.0], "max_sic": [2.9, 3.3]}}
    rows = dict((r[0], r[1:]) for r in report._headline_rows(test))
    assert rows["1/eps_B at eps_S = 0.3"] == ("2,000", "[1,500, 2,500]")
    assert all(interval.startswith("[") for name, (_, interval) in rows.items() if name != "accuracy")


def test_published_figures_appear_only_beside_the_public_data_they_were_measured_on():
    public = {"kind": "public", "directory": "/data/top"}
    assert "0.9821" in report.published_line("binary", "top_tagging_images/effnet_s_40", "effnet_s", public)
    generated = report.published_line("binary", "top_tagging_images/quick", "effnet_s", {"kind": "generated"})
    assert "0.9821" not in generated and "not shown beside it" in generated
    # 003's CMS detector-level AUC is never printed beside generator-level Z+jet quark/gluon runs.
    assert all("0.8076" not in text for text in report.PUBLISHED.values())
    assert report.published_line("binary", "quark_gluon_images/pt_33", "resnet15", public) == ""


def test_figures_of_samples_never_released_appear_beside_every_run_with_the_caveat():
    generated = {"kind": "generated"}
    line = report.published_line("binary", "electron_images/et", "calo_cnn", generated)
    assert "0.972" in line and "never released" in line and "orderings" in line
    assert "0.973" in report.published_line("binary", "electron_images/quick", "calo_cnn", generated, True)
    assert "0.848" in report.published_line("binary", "muon_images/image", "pfn", generated)
    assert report.published_line("binary", "muon_images/image", "lenet", generated) == ""
