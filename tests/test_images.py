"""Jet images: ImageSpec, numpy and TensorFlow renderers, sparse/dense forms."""

import dataclasses
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

from jettf.images import (  # noqa: E402
    ImagePreparation,
    ImageSpec,
    SparseImages,
    densify,
    render,
    render_tf,
)
from jettf.images import channels as image_channels  # noqa: E402
from jettf.images.preprocess import bin_edges, needs_subjets, pixel_index  # noqa: E402
from jettf.images.render_numpy import NP_OPS  # noqa: E402
from jettf.jets import JetBatch, delta_phi, generator_split  # noqa: E402

CHANNEL_SETS = [
    ("pt",), ("pt", "mass", "energy"), ("charged_pt", "neutral_pt", "charged_multiplicity"),
    ("tracks", "ecal", "hcal"), ("em", "had", "pt"),
]
PREPROCESSING = {
    "none": {},
    "pt_centroid": dict(center="pt_centroid"),
    "hardest": dict(center="hardest"),
    "leading_subjet": dict(center="leading_subjet"),
    "principal_axis": dict(center="pt_centroid", rotate="principal_axis"),
    "subjet": dict(center="leading_subjet", rotate="subjet"),
    "flip": dict(flip=True),
    "l1": dict(normalize="l1"),
    "all": dict(center="hardest", rotate="principal_axis", flip=True, normalize="l1"),
}
PIDS = np.array([22, 211, -211, 130, 321, -321, 2112, 2212, 11, -13])
PID_CHARGE = np.array([0, 1, -1, 0, 1, -1, 0, 1, -1, 1])


def random_jets(n=40, m=30, seed=0, spread=0.2):
    """Jets around random axes (any phi, so some cross phi = +-pi): 0..m constituents, some
    outside a 0.4 image, massive (pion-mass) constituents, PDG ids and matching charges, and
    random subdetector tags (every value of jettf.jets.SUBDETECTORS)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, m + 1, n)
    counts[:2] = (0, 1)
    mask = np.arange(m) < counts[:, None]
    pt = rng.exponential(20.0, (n, m)) + 0.5
    eta = rng.uniform(-2, 2, (n, 1)) + rng.normal(0, spread, (n, m))
    phi = rng.uniform(-np.pi, np.pi, (n, 1)) + rng.normal(0, spread, (n, m))
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + 0.1396**2)
    species = rng.integers(0, len(PIDS), (n, m))
    return JetBatch.from_ptetaphie(
        pt, eta, phi, energy, mask=mask, pid=PIDS[species], charge=PID_CHARGE[species].astype(np.float32),
        subdetector=rng.integers(0, 6, (n, m)),
    )


@pytest.fixture(scope="module")
def jets():
    return random_jets()


# Jets per class, matching other test modules so the session fixture generates each sample once.
PYTHIA_JETS_PER_CLASS = {"top_tagging": 24, "jetnet": 10, "quark_gluon": 10}


def pythia(request, sample="top_tagging"):
    """Pythia jets from the session fixture in conftest.py."""
    return request.getfixturevalue("pythia_jets")(sample, n_jets=PYTHIA_JETS_PER_CLASS[sample], seed=1)


def tf_render(batch, spec, sparse=False):
    args = [tf.constant(getattr(batch, name)) for name in ("pt", "eta", "phi", "energy", "mask", "jet_eta", "jet_phi")]
    charge = None if batch.charge is None else tf.constant(batch.charge)
    tags = batch.subdetector if batch.subdetector is not None or batch.pid is None else generator_split(batch.pid)
    subdetector = None if tags is None else tf.constant(tags)
    out = render_tf(*args, spec, charge=charge, sparse=sparse, subdetector=subdetector)
    return SparseImages(*(a.numpy() for a in out)) if sparse else out.numpy()


def assert_images_close(actual, expected, rtol=1e-5):
    """Per channel, agreement to ``rtol`` relative to the channel's largest pixel."""
    assert actual.shape == expected.shape
    scale = np.abs(expected).max(axis=tuple(range(expected.ndim - 1)), initial=0.0)
    error = np.abs(actual.astype(np.float64) - expected)
    bad = error > rtol * (np.abs(expected) + scale)
    assert not bad.any(), f"{bad.sum()} of {bad.size} pixels differ, by up to {error.max():.3g}; channel scales {scale}"


def relative(batch):
    """(etarel, phirel, pt) in float64 with wrapped phi, the way a reader would compute them by hand."""
    etarel = batch.eta.astype(np.float64) - batch.jet_eta.astype(np.float64)[:, None]
    phirel = delta_phi(batch.phi.astype(np.float64), batch.jet_phi.astype(np.float64)[:, None])
    return etarel, phirel, batch.pt.astype(np.float64)


# ------------------------------------------------------------ numpy == TensorFlow
def check_numpy_matches_tf(batch, spec):
    """Dense images agree; the merged sparse layout (render_tf's) agrees entry by entry; the default
    layout (per constituent for additive specs) densifies, with numpy and TF, to the same images."""
    dense, sparse = render(batch, spec), render(batch, spec, sparse=True)
    assert dense.dtype == np.float32 and dense.shape == (len(batch), *spec.shape)
    assert_images_close(tf_render(batch, spec), dense)
    merged = render(batch, spec, sparse=True, merge=True)
    tf_sparse = tf_render(batch, spec, sparse=True)
    for name in ("index", "count", "n_outside"):
        np.testing.assert_array_equal(getattr(tf_sparse, name), getattr(merged, name), err_msg=name)
    assert_images_close(tf_sparse.values, merged.values)
    np.testing.assert_array_equal(sparse.n_outside, merged.n_outside)
    assert_images_close(densify(merged, spec.npix), dense)
    assert_images_close(_keras_densify(sparse, spec), dense)


@pytest.mark.parametrize("channels", CHANNEL_SETS, ids="+".join)
@pytest.mark.parametrize("option", PREPROCESSING)
def test_numpy_matches_tf_random(jets, channels, option):
    check_numpy_matches_tf(jets, ImageSpec(20, 0.4, channels, **PREPROCESSING[option]))


@pytest.mark.parametrize("sample", ["top_tagging", "quark_gluon", "jetnet"])
@pytest.mark.parametrize("option", PREPROCESSING)
def test_numpy_matches_tf_pythia(request, sample, option):
    batch = pythia(request, sample)
    spec = ImageSpec(24, 1.2 if sample == "top_tagging" else 0.4, CHANNEL_SETS[1], **PREPROCESSING[option])
    if needs_subjets(spec):  # TF's kT clustering costs O(M^3) per jet on CPU: the 40 hardest constituents
        batch = batch.sort_by_pt().pad_to(40)
    check_numpy_matches_tf(batch, spec)
    if batch.charge is not None or batch.pid is not None:  # charged channels and 003's generator-level EM+Had
        check_numpy_matches_tf(batch, dataclasses.replace(spec, channels=CHANNEL_SETS[2] + ("em", "had")))


@pytest.fixture(scope="module")
def detector_level(request):
    """Detector-level top-tagging jets (jettf.detector, CMS card): tracks, ECAL cells, HCAL towers."""
    from jettf.detector import simulate_jets

    return simulate_jets(pythia(request, "top_tagging"), "cms", seed=2, view="objects")


@pytest.mark.parametrize("option", PREPROCESSING)
def test_numpy_matches_tf_detector_level(detector_level, option):
    spec = ImageSpec(32, 1.0, CHANNEL_SETS[3] + ("pt",), **PREPROCESSING[option])
    batch = detector_level.sort_by_pt()
    if needs_subjets(spec):  # TF's kT clustering costs O(M^3) per jet on CPU: the 40 hardest objects
        batch = batch.pad_to(40)
    check_numpy_matches_tf(batch, spec)


def test_render_tf_under_xla_and_one_jet(jets):
    spec = ImageSpec(16, 0.4, ("pt", "mass"), center="leading_subjet", rotate="subjet", flip=True)
    args = [tf.constant(a) for a in (jets.pt, jets.eta, jets.phi, jets.energy, jets.mask, jets.jet_eta, jets.jet_phi)]
    compiled = tf.function(lambda *a: render_tf(*a, spec), jit_compile=True, autograph=False)
    assert_images_close(compiled(*args).numpy(), render(jets, spec))
    one = render_tf(*(a[5] for a in args), spec).numpy()
    assert_images_close(one, render(jets[5], spec)[0])


def test_render_tf_from_raw_constituents(jets):
    """The serving form: [N, M, 4] (pt, eta, phi, energy), zero-padded, plus the jet axis."""
    spec = ImageSpec.effnet_s(npix=24)
    constituents = tf.constant(np.stack([jets.pt, jets.eta, jets.phi, jets.energy], axis=-1))
    images = render_tf(*tf.unstack(constituents, axis=-1), None, jets.jet_eta, jets.jet_phi, spec)
    assert_images_close(images.numpy(), render(jets, spec))


# ---------------------------------------------------------------- references
def test_pt_image_equals_histogram2d(jets):
    spec = ImageSpec(25, 0.4)
    images = render(jets, spec)
    etarel, phirel, pt = relative(jets)
    for i in range(len(jets)):
        m = jets.mask[i]
        expected, _, _ = np.histogram2d(etarel[i, m], phirel[i, m], bins=25, range=[[-0.4, 0.4]] * 2, weights=pt[i, m])
        np.testing.assert_allclose(images[i, ..., 0], expected, rtol=1e-6, err_msg=f"jet {i}")


def test_on_edge_values_follow_histogram2d():
    """Points exactly on bin edges, the image edges included (+0.5 falls in the last bin)."""
    edges = np.linspace(-0.5, 0.5, 5)  # exact in float32
    eta, phi = (a.ravel()[None] for a in np.meshgrid(edges, edges, indexing="ij"))
    pt = np.arange(1.0, eta.size + 1)[None]
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), jet_eta=[0.0], jet_phi=[0.0])
    spec = ImageSpec(4, 0.5)
    expected, _, _ = np.histogram2d(eta[0], phi[0], bins=4, range=[[-0.5, 0.5]] * 2, weights=pt[0])
    np.testing.assert_array_equal(render(batch, spec)[0, ..., 0], expected)
    np.testing.assert_array_equal(tf_render(batch, spec)[0, ..., 0], expected)
    assert render(batch, spec, sparse=True).n_outside[0] == 0


def test_centred_image_matches_energyflow_pixelate(jets):
    """energyflow centres on its pt centroid snapped to the pixel grid and stores [phi, y]; fed our
    exactly centred coordinates (centroid 0, so no snapping) and transposed, it must agree."""
    pixelate = pytest.importorskip("energyflow.utils").pixelate
    spec = ImageSpec(33, 0.4, ("pt", "charged_multiplicity"), center="pt_centroid")
    images = render(jets, spec)
    etarel, phirel, pt = relative(jets)
    for i in np.nonzero(jets.n_constituents > 0)[0]:
        m = jets.mask[i]
        x = etarel[i, m] - np.average(etarel[i, m], weights=pt[i, m])
        y = phirel[i, m] - np.average(phirel[i, m], weights=pt[i, m])
        rows = np.stack([pt[i, m], x, y, jets.pid[i, m]], axis=1)
        expected = pixelate(rows, npix=33, img_width=0.8, nb_chan=2, norm=False, charged_counts_only=True)
        np.testing.assert_allclose(images[i], expected.transpose(1, 0, 2), rtol=1e-6, atol=1e-6, err_msg=f"jet {i}")
        normed = pixelate(rows, npix=33, img_width=0.8, nb_chan=1, norm=True)
        l1 = render(jets[i], dataclasses.replace(spec, channels=("pt",), normalize="l1"))[0]
        np.testing.assert_allclose(l1, normed.transpose(1, 0, 2), rtol=1e-6, atol=1e-9)


def test_pythia_pt_image_equals_histogram2d(request):
    batch = pythia(request, "jetnet")
    images = render(batch, ImageSpec.ensemble())
    etarel, phirel, pt = relative(batch)
    for i in range(len(batch)):
        m = batch.mask[i]
        expected, _, _ = np.histogram2d(etarel[i, m], phirel[i, m], bins=299, range=[[-0.4, 0.4]] * 2, weights=pt[i, m])
        np.testing.assert_allclose(images[i, ..., 0], expected, rtol=1e-6)


def test_mass_of_two_particles_in_one_pixel():
    pt, eta, phi = np.array([[100.0, 50.0]]), np.array([[0.01, 0.03]]), np.array([[0.02, -0.01]])
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), jet_eta=[0.0], jet_phi=[0.0])
    # Massless: m^2 = 2 pt1 pt2 (cosh(d_eta) - cos(d_phi)), evaluated without cancellation.
    p, e, f = (a[0].astype(np.float64) for a in (batch.pt, batch.eta, batch.phi))
    expected = np.sqrt(4 * p[0] * p[1] * (np.sinh((e[0] - e[1]) / 2) ** 2 + np.sin((f[0] - f[1]) / 2) ** 2))
    spec = ImageSpec(9, 0.4, ("mass", "pt", "energy"))
    for image in (render(batch, spec)[0], tf_render(batch, spec)[0]):
        (i, j), = np.argwhere(image[..., 1] > 0)
        assert image[i, j, 1] == pytest.approx(150.0)
        assert image[i, j, 2] == pytest.approx(batch.energy.sum(), rel=1e-6)
        assert image[i, j, 0] == pytest.approx(expected, rel=1e-3)  # float32 E: m^2 known to ~1e-7 E^2


# ------------------------------------------------------------------ geometry
def test_total_pt_and_dropped_constituents(jets):
    spec = ImageSpec(17, 0.3)
    sparse = render(jets, spec, sparse=True)
    etarel, phirel, pt = relative(jets)
    inside = jets.mask & (np.abs(etarel) <= 0.3) & (np.abs(phirel) <= 0.3)
    np.testing.assert_allclose(render(jets, spec).sum(axis=(1, 2, 3)), (pt * inside).sum(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(sparse.n_outside, (jets.mask & ~inside).sum(axis=1))
    assert sparse.n_outside.sum() > 0 and sparse.n_outside.dtype == np.int32


def test_phi_wraparound(jets):
    """A jet at phi = 3.1 with constituents across +-pi renders like the same jet at phi = 0."""
    shifted = dataclasses.replace(
        jets,
        phi=delta_phi(jets.phi, jets.jet_phi[:, None] - 3.1).astype(np.float32) * jets.mask,
        jet_phi=np.full(len(jets), 3.1, np.float32),
    )
    assert (np.abs(shifted.phi[jets.mask]) > 3.0).mean() > 0.3  # constituents on both sides of +-pi
    for option in ("none", "all", "subjet"):
        spec = ImageSpec(15, 0.4, ("pt", "mass"), **PREPROCESSING[option])
        assert_images_close(render(shifted, spec), render(jets, spec), rtol=1e-4)
        assert_images_close(tf_render(shifted, spec), render(jets, spec), rtol=1e-4)


@pytest.mark.parametrize("option", PREPROCESSING)
def test_empty_and_single_constituent_jets(jets, option):
    spec = ImageSpec(11, 0.4, ("pt", "mass", "energy"), **PREPROCESSING[option])
    empty_and_single = jets[[0, 1]]
    assert list(empty_and_single.n_constituents) == [0, 1]
    sparse = render(empty_and_single, spec, sparse=True)
    images = render(empty_and_single, spec)
    assert np.all(np.isfinite(images)) and not images[0].any()
    assert list(sparse.count) == [0, 1] and list(sparse.n_outside) == [0, 0]
    # The lone constituent is the jet axis and its own centre: the central pixel.
    assert sparse.index[1, 0] == 5 * 11 + 5
    assert images[1, 5, 5, 0] == pytest.approx(1.0 if spec.normalize else empty_and_single.pt[1, 0])
    assert_images_close(tf_render(empty_and_single, spec), images)


@pytest.mark.parametrize("channels", [("pt", "mass"), ("pt", "energy")], ids=["merged", "per_constituent"])
def test_batches_without_jets_or_constituent_slots(channels):
    spec = ImageSpec(5, 0.4, channels, center="leading_subjet", rotate="subjet")
    for n, m in ((0, 4), (3, 0)):
        batch = JetBatch.from_ptetaphie(*np.zeros((4, n, m)))
        sparse = render(batch, spec, sparse=True)
        assert sparse.index.shape == (n, m) and sparse.values.shape == (n, m, 2)
        np.testing.assert_array_equal(render(batch, spec), np.zeros((n, 5, 5, 2)))
        np.testing.assert_array_equal(tf_render(batch, spec), np.zeros((n, 5, 5, 2)))


@pytest.mark.parametrize("channels", [CHANNEL_SETS[1] + CHANNEL_SETS[2], ("pt", "energy") + CHANNEL_SETS[2]],
                         ids=["merged", "per_constituent"])
def test_padding_never_contributes(jets, channels):
    spec = ImageSpec(15, 0.4, channels, center="leading_subjet", rotate="principal_axis", flip=True)
    rng = np.random.default_rng(3)
    garbage = {
        name: np.where(jets.mask, getattr(jets, name), rng.uniform(0, 100, jets.pt.shape)).astype(np.float32)
        for name in ("pt", "eta", "phi", "energy", "charge")
    }
    dirty = dataclasses.replace(jets, **garbage)
    wider = jets.pad_to(jets.max_constituents + 7)
    expected = render(jets, spec)
    for batch in (dirty, wider):
        np.testing.assert_array_equal(render(batch, spec), expected)
        assert_images_close(tf_render(batch, spec), expected)


def test_rotation_and_flip_conventions():
    """Principal axis along +eta with more pt at +eta; the harder half at +phi after the flip."""
    # An elongated jet along the diagonal eta = phi, harder in the upper-right.
    t = np.array([[-0.2, -0.1, 0.0, 0.1, 0.2, 0.05]])
    pt = np.array([[5.0, 10.0, 50.0, 20.0, 30.0, 8.0]])
    eta, phi = t.copy(), t.copy()
    phi[0, -1] = -0.05  # one constituent off the axis, below it
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), jet_eta=[0.0], jet_phi=[0.0])
    spec = ImageSpec(21, 0.4, center="hardest", rotate="principal_axis")
    image = render(batch, spec)[0, ..., 0]
    assert image[:, 10].sum() > 0.9 * image.sum()  # on the eta axis (phi bin 10)
    assert image[11:, :].sum() > image[:10, :].sum()  # more pt at +eta
    flipped = render(batch, dataclasses.replace(spec, flip=True))[0, ..., 0]
    assert flipped[:, 11:].sum() >= flipped[:, :10].sum()


# -------------------------------------------------------------- sparse / dense
def test_sparse_layout_and_densify(jets):
    """Merged layout: unique ascending pixels. Per-constituent layout: the constituents inside the image, in
    order, with their own values (pixels repeat). Both densify (numpy and TF) to the same images."""
    spec = ImageSpec(21, 0.3, ("pt", "energy"), center="pt_centroid")
    merged = render(jets, spec, sparse=True, merge=True)
    sparse = render(jets, spec, sparse=True)
    for layout in (merged, sparse):
        assert layout.index.dtype == np.int32 and layout.values.dtype == np.float32 and layout.count.dtype == np.int32
        assert layout.index.shape == jets.pt.shape and layout.values.shape == (*jets.pt.shape, 2)
    # The reference: each real constituent's pixel from the shared (numpy / TF) definition.
    x, y = (np.asarray(a) for a in _image_coordinates(jets, spec))
    pix, _ = pixel_index(NP_OPS, x, y, jets.mask, spec.npix, spec.extent)
    repeated = 0
    for i in range(len(jets)):
        used = merged.index[i, : merged.count[i]]
        assert np.all(np.diff(used) > 0)  # unique and ascending
        inside = pix[i] < spec.npix**2
        np.testing.assert_array_equal(sparse.index[i, : sparse.count[i]], pix[i, inside])
        np.testing.assert_array_equal(sparse.values[i, : sparse.count[i]],
                                      np.stack([jets.pt[i, inside], jets.energy[i, inside]], -1))
        for layout in (merged, sparse):
            assert not layout.index[i, layout.count[i] :].any() and not layout.values[i, layout.count[i] :].any()
        repeated += sparse.count[i] - merged.count[i]
    assert repeated > 0  # the test exercises repeated pixels
    dense = render(jets, spec)
    np.testing.assert_array_equal(densify(sparse, 21), dense)
    assert_images_close(densify(merged, 21), dense, rtol=1e-6)
    assert_images_close(_keras_densify(sparse, spec), dense, rtol=1e-6)
    with pytest.raises(ValueError, match="npix=5"):
        densify(sparse, 5)


def _keras_densify(sparse, spec):
    """The model's densify (ImagePreparation) on numpy sparse images: padding entries are (0, 0)."""
    return np.asarray(ImagePreparation(spec).densify(sparse.index.astype(np.int32), sparse.values))


def _image_coordinates(batch, spec):
    from jettf.images.preprocess import Constituents, image_coordinates

    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    c = Constituents(f64(batch.pt), f64(batch.eta), f64(batch.phi), f64(batch.energy), batch.mask, None,
                     f64(batch.jet_eta), f64(batch.jet_phi))
    return image_coordinates(NP_OPS, c, spec)


def test_densify_adds_repeated_pixels():
    """Hand-made sparse images with a pixel repeated: numpy, TF and the Keras layer add, never overwrite."""
    from jettf.images import ImagePreparation

    index = np.array([[4, 1, 4, 4, 0], [2, 2, 0, 0, 0]], np.int32)
    values = np.array([[[1, 10], [2, 20], [3, 30], [4, 40], [9, 9]], [[5, 50], [6, 60], [0, 0], [0, 0], [0, 0]]],
                      np.float32)
    count = np.array([4, 2], np.int32)  # the last entry of jet 0 lies past its count
    expected = np.zeros((2, 9, 2), np.float32)
    expected[0, 4], expected[0, 1], expected[1, 2] = (8, 80), (2, 20), (11, 110)
    expected = expected.reshape(2, 3, 3, 2)
    np.testing.assert_array_equal(densify(SparseImages(index, values, count, np.zeros(2, np.int32)), 3), expected)
    padded = np.where((np.arange(5) < count[:, None])[..., None], values, 0)  # records: padding is (0, 0)
    layer = ImagePreparation(ImageSpec(3, 0.4, ("pt", "energy")))
    np.testing.assert_array_equal(np.asarray(layer.densify(index, padded)), expected)


def test_pixel_moments_with_repeated_pixels(jets):
    """The builders' per-pixel statistics from per-constituent records equal those of the dense images:
    entries are added per (jet, pixel) before squaring."""
    from jettf.data.records import pixel_moments

    spec = ImageSpec(5, 0.4, ("pt", "energy"))  # coarse: many constituents share a pixel
    sparse = render(jets, spec, sparse=True)
    dense = render(jets, spec).astype(np.float64).reshape(len(jets), 25, 2)
    sums, squares = pixel_moments(sparse.index, sparse.values, 5)
    np.testing.assert_allclose(sums, dense.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(squares, (dense**2).sum(axis=0), rtol=1e-6)
    entry_squares = np.zeros((25, 2))  # what squaring each entry would give: less, by the cross terms
    np.add.at(entry_squares, sparse.index.ravel(), sparse.values.reshape(-1, 2).astype(np.float64) ** 2)
    assert np.all(entry_squares.sum(axis=0) < 0.9 * squares.sum(axis=0))
    merged = render(jets, spec, sparse=True, merge=True)
    for a, b in zip(pixel_moments(merged.index, merged.values, 5), (sums, squares)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_per_constituent_only_for_additive_channels(jets):
    """mass is a function of the pixel's summed four-momentum: its specs keep unique pixels (merged per
    pixel before the value is computed); the additive channels, charged_multiplicity included (a count
    is a sum of 0/1 per constituent), store one entry per constituent."""
    assert not image_channels.additive(("pt", "mass")) and image_channels.additive(CHANNEL_SETS[2] + CHANNEL_SETS[3])
    mass_spec = ImageSpec(7, 0.4, ("pt", "mass"))
    sparse = render(jets, mass_spec, sparse=True)
    for i in range(len(jets)):
        assert np.all(np.diff(sparse.index[i, : sparse.count[i]]) > 0)
    with pytest.raises(ValueError, match=r"merge=False needs additive channels; \['mass'\]"):
        render(jets, mass_spec, sparse=True, merge=False)
    # Two massless constituents in one pixel: the pixel's mass is that of their sum, not 0 + 0.
    pt, eta, phi = np.array([[100.0, 50.0]]), np.array([[0.01, 0.03]]), np.array([[0.02, -0.01]])
    pair = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), jet_eta=[0.0], jet_phi=[0.0])
    one = render(pair, ImageSpec(9, 0.4, ("mass",)), sparse=True)
    assert one.count[0] == 1 and one.values[0, 0, 0] > 1.0
    colour = ImageSpec(7, 0.4, CHANNEL_SETS[2])
    sparse, merged = render(jets, colour, sparse=True), render(jets, colour, sparse=True, merge=True)
    assert sparse.count.sum() > merged.count.sum()
    assert set(np.unique(sparse.values[..., 2])) <= {0.0, 1.0}
    multiplicity = densify(sparse, 7)[..., 2]
    np.testing.assert_array_equal(multiplicity, densify(merged, 7)[..., 2])
    assert np.all(multiplicity == np.round(multiplicity))


@pytest.mark.parametrize("npix, extent", [(4, 0.5), (7, 0.4), (33, 0.4), (40, 1.2), (299, 0.4), (1, 0.3)])
def test_compiled_pixel_index_equals_the_shared_definition(npix, extent):
    """jettf.images.kernels.pixel_index (numpy renderer) == preprocess.pixel_index (TF renderer's code) on bin
    edges, their float neighbours, the image borders, NaN, infinities and padding."""
    from jettf.images import kernels

    edges = bin_edges(npix, extent)
    special = np.concatenate([edges, np.nextafter(edges, 1), np.nextafter(edges, -1), [np.nan, np.inf, -np.inf, 0.0]])
    rng = np.random.default_rng(npix)
    x = np.concatenate([rng.permutation(np.tile(special, 3)), rng.normal(0, extent, 3000)])
    y = np.concatenate([rng.permutation(np.tile(special, 3)), rng.normal(0, extent, 3000)])
    size = len(x) - len(x) % 12
    x, y = x[:size].reshape(-1, 12), y[:size].reshape(-1, 12)
    mask = rng.random(x.shape) < 0.9
    expected = pixel_index(NP_OPS, x, y, mask, npix, extent)
    got = kernels.pixel_index(x, y, mask, edges)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[0].dtype == np.int32 and (got[0] < npix**2).sum() > 100


def _densify_per_example_in_tf_data(sparse, spec):
    """Records of exactly ``count`` entries, densified one by one inside Dataset.map (the layer's densify)."""
    records = [(sparse.index[i, :c], sparse.values[i, :c]) for i, c in enumerate(sparse.count)]
    ds = tf.data.Dataset.from_generator(
        lambda: iter(records),
        output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, spec.n_channels], tf.float32)),
    )
    layer = ImagePreparation(spec)
    return ds.map(lambda i, v: layer.densify(i[None], v[None])[0]).batch(64).get_single_element().numpy()


def test_densify_in_tf_data_on_single_examples(jets):
    """Unique-pixel records (a spec with mass) densify per example to the dense render."""
    spec = ImageSpec(13, 0.4, ("pt", "mass"))
    np.testing.assert_array_equal(_densify_per_example_in_tf_data(render(jets, spec, sparse=True), spec),
                                  render(jets, spec))


def test_densify_in_tf_data_per_constituent_records(jets):
    """Records of the per-constituent layout (pixels repeat) densified per example inside Dataset.map."""
    spec = ImageSpec(6, 0.4, ("pt", "energy"))
    sparse, merged = render(jets, spec, sparse=True), render(jets, spec, sparse=True, merge=True)
    assert sparse.count.sum() > merged.count.sum() + 100
    images = _densify_per_example_in_tf_data(sparse, spec)
    assert_images_close(images, render(jets, spec, merge=True), rtol=1e-6)
    assert_images_close(images, densify(merged, 6), rtol=1e-6)


# ---------------------------------------------------------------- channels
def test_charge_from_pid_and_missing_charge(jets):
    spec = ImageSpec(9, 0.4, CHANNEL_SETS[2])
    from_pid = dataclasses.replace(jets, charge=None)
    np.testing.assert_array_equal(render(from_pid, spec), render(jets, spec))
    with pytest.raises(ValueError, match="charge.*pid"):
        render(dataclasses.replace(jets, charge=None, pid=None), spec)
    with pytest.raises(ValueError, match="need `charge`"):
        render_tf(jets.pt, jets.eta, jets.phi, jets.energy, jets.mask, jets.jet_eta, jets.jet_phi, spec)
    images = render(jets, spec)
    np.testing.assert_allclose(images[..., 0] + images[..., 1], render(jets, ImageSpec(9, 0.4))[..., 0], rtol=1e-6)
    assert np.all(images[..., 2] == np.round(images[..., 2]))


def test_subdetector_channels_and_missing_tags(jets):
    """tracks / ecal / hcal / em / had sum the constituents with that JetBatch.subdetector tag."""
    spec = ImageSpec(9, 0.4, CHANNEL_SETS[3] + ("em", "had"))
    images = render(jets, spec)
    etarel, phirel, pt = relative(jets)
    inside = jets.mask & (np.abs(etarel) <= 0.4) & (np.abs(phirel) <= 0.4)
    for k, (tag, quantity) in enumerate(((1, jets.pt), (2, jets.energy), (3, jets.energy), (4, jets.pt), (5, jets.pt))):
        expected = np.sum(np.where(inside & (jets.subdetector == tag), quantity, 0.0), axis=1)
        np.testing.assert_allclose(images[..., k].sum(axis=(1, 2)), expected, rtol=1e-5, err_msg=spec.channels[k])
    untagged = dataclasses.replace(jets, subdetector=None)
    with pytest.raises(ValueError, match=r"channels \['tracks', 'ecal', 'hcal'\] need JetBatch.subdetector"):
        render(untagged, spec)
    with pytest.raises(ValueError, match="need `subdetector`"):
        render_tf(jets.pt, jets.eta, jets.phi, jets.energy, jets.mask, jets.jet_eta, jets.jet_phi, spec)
    em_had = ImageSpec(9, 0.4, ("em", "had"))  # generator level: from pid without tags
    np.testing.assert_array_equal(render(untagged, em_had), render(untagged.with_generator_split(), em_had))
    with pytest.raises(ValueError, match=r"\['em', 'had'\] need JetBatch.subdetector.*and JetBatch.pid are both None"):
        render(dataclasses.replace(untagged, pid=None), em_had)


# ---------------------------------------------------------------- ImageSpec
def test_spec_round_trip_hash_and_fingerprint():
    specs = [ImageSpec.ensemble(), ImageSpec.effnet_s(), ImageSpec.effnet_s(35), ImageSpec.quark_gluon(),
             ImageSpec(20, 0.4, ["pt", "mass"], center="leading_subjet", rotate="subjet", flip=True, normalize="l1")]
    for spec in specs:
        assert ImageSpec.from_json(spec.to_json()) == spec
        assert ImageSpec.from_dict(spec.to_dict()) == spec
        assert hash(ImageSpec.from_json(spec.to_json())) == hash(spec)
        assert ImageSpec.from_json(spec.to_json()).fingerprint() == spec.fingerprint()
    assert len({s.fingerprint() for s in specs}) == len(specs) == len(set(specs))
    assert ImageSpec(33, 0.4, ["pt"], flip=None) == ImageSpec(33, 0.4) and ImageSpec(33, 0.4).extent == 0.4
    assert ImageSpec(np.int64(33), np.float32(0.5), "pt").to_json() == ImageSpec(33, 0.5).to_json()
    assert ImageSpec.effnet_s(40).channel_units() == ["GeV", "GeV", "GeV"]
    assert dataclasses.replace(ImageSpec.ensemble(), normalize="l1").channel_units() == ["fraction of the image's pt"]
    assert ImageSpec.ensemble().fingerprint() == "1001fb63548c42f7"  # changes only with the spec or DEFINITIONS
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs[0].npix = 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(npix=0), "ImageSpec.npix: expected a positive int"),
        (dict(npix=3.0), "ImageSpec.npix"),
        (dict(npix=50_000), "ImageSpec.npix: expected a positive int <= 46340"),
        (dict(extent=-1), r"ImageSpec.extent: expected a half-width in \(0, pi\)"),
        (dict(extent=4.0), "ImageSpec.extent"),
        (dict(channels=()), "ImageSpec.channels: expected a non-empty tuple"),
        (dict(channels=("pt", "colour")), r"ImageSpec.channels: unknown channel\(s\) \['colour'\]"),
        (dict(channels=("pt", "pt")), "ImageSpec.channels: duplicate"),
        (dict(center="jet"), "ImageSpec.center: expected None or one of"),
        (dict(rotate="pca"), "ImageSpec.rotate: expected None or one of"),
        (dict(flip="yes"), "ImageSpec.flip: expected True, False or None"),
        (dict(normalize="l2"), "ImageSpec.normalize"),
    ],
)
def test_spec_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageSpec(**{"npix": 33, "extent": 0.4, **kwargs})


def test_spec_from_dict_and_json_errors():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['size'\]"):
        ImageSpec.from_dict({"npix": 33, "extent": 0.4, "size": 3})
    with pytest.raises(ValueError, match=r"required field\(s\) \['extent'\]"):
        ImageSpec.from_dict({"npix": 33})
    with pytest.raises(ValueError, match="not valid JSON"):
        ImageSpec.from_json("{npix: 33")
