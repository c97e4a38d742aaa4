"""004's lepton datasets end to end: ``electron_images`` / ``muon_images`` records hold what the files hold (both
images at their own granularity, the features computed from them, the weights, the cells), and ``jettf.train``,
``jettf.export`` and ``jettf.explain`` work on them. Files: small synthetic candidates in jettf's layout."""

from __future__ import annotations

import numpy as np
import pytest

from jettf import train
from jettf.training.run_dir import RunDir
from tfds_builders.testing import synthetic_lepton_candidates

N_PER_CLASS = 120
#: The synthetic electrons (a 3x3-wide shower, no HCAL) and jets (7x7, HCAL energy) are separated by eye; a
#: network that learned nothing from the images stays near AUC 0.5.
MIN_AUC = 0.95
#: The PFN on 144 synthetic muons, 12 quick epochs: non-prompt ones carry ~14 GeV more E_T near the muon over ~20
#: GeV of pile-up-like noise; measured AUC 0.90 (chance 0.5).
MIN_AUC_PFN = 0.80


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """``{kind: (manual directory, arrays)}`` and one data directory for the module."""
    from jettf.io import leptons

    base = tmp_path_factory.mktemp("leptons")
    out = {}
    for kind, write, name in (("electrons", leptons.write_electrons, leptons.ELECTRONS_FILE),
                              ("muons", leptons.write_muons, leptons.MUONS_FILE)):
        arrays = synthetic_lepton_candidates(kind, 2 * N_PER_CLASS, seed=3)
        (base / kind).mkdir()
        write(arrays, base / kind / name)
        out[kind] = (base / kind, arrays)
    out["data_dir"] = base / "data"
    return out


def _built(samples, name):
    import jettf.data as jd

    kind = "electrons" if name.startswith("electron") else "muons"
    return jd.build(f"{name}/quick", data_dir=str(samples["data_dir"]), manual_dir=str(samples[kind][0]))


def _records(info, inputs):
    """Every record of every split, densified, with its stored weight; and the file row of each (by pt)."""
    import jettf.data as jd

    parts = []
    for split in info.splits:
        ds = jd.make_dataset(info, split, batch_size=64, inputs=inputs, densify=True, training=False,
                             record_weights=True)
        parts += [(x, y, w) for x, y, w in ds.as_numpy_iterator()]
    x = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    return x, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def _rows(arrays, pt):
    row_of = {float(v): i for i, v in enumerate(arrays["pt"])}
    return np.array([row_of[float(v)] for v in pt])


def _hardest_sum(values, k):
    return np.sort(values, axis=1)[:, ::-1][:, :k].sum(axis=1)


def test_electron_records_hold_both_images_the_expert_features_weights_and_cells(samples):
    from jettf.data.sources import ELECTRON_SOURCE_FEATURES
    from jettf.features.calorimeter import candidate_mass, electron_features

    info = _built(samples, "electron_images")
    arrays = samples["electrons"][1]
    assert info.splits == {"train": 144, "validation": 48, "test": 48}  # 60/20/20 of 120 + 120
    assert info.feature_names == list(ELECTRON_SOURCE_FEATURES) and info.layout.has_weight
    assert {k: (s.npix, s.channels) for k, s in info.extra_image_specs.items()} == {"hcal": (8, ("hcal_et",))}
    x, y, w = _records(info, ("image", "hcal", "global_features", "constituents", "jet"))
    rows = _rows(arrays, x["jet"][:, 0])
    assert sorted(rows.tolist()) == list(range(2 * N_PER_CLASS))  # every candidate once, none dropped
    np.testing.assert_array_equal(y, arrays["y"][rows])
    np.testing.assert_array_equal(x["image"][..., 0], arrays["ecal_et"][rows])  # 31x31, as in the file
    np.testing.assert_array_equal(x["hcal"][..., 0], arrays["hcal_et"][rows])  # 8x8, not resampled
    np.testing.assert_array_equal(w, arrays["weight"][rows])
    expected = np.concatenate([electron_features(arrays["ecal_e"], arrays["ecal_et"], arrays["hcal_et"]),
                               candidate_mass(arrays["ecal_et"], arrays["hcal_et"], arrays["hcal_offset"])[:, None]],
                              axis=1)[rows]
    np.testing.assert_allclose(x["global_features"], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x["jet"][:, 3], expected[:, -1], rtol=1e-6)
    # Cells: the 256 hardest non-zero ECAL cells and HCAL towers (E_T), hardest first.
    cells = x["constituents"]
    flat = np.concatenate([arrays["ecal_et"].reshape(len(rows), -1), arrays["hcal_et"].reshape(len(rows), -1)], 1)
    np.testing.assert_allclose(cells[..., 0].sum(axis=1), _hardest_sum(flat, 256)[rows], rtol=1e-5)
    assert np.all(np.diff(cells[..., 0], axis=1) <= 0)
    assert info.metadata["constituents_relative"] and info.metadata["images_as_read"]
    hcal_mean, _ = info.extra_image_statistics("hcal")  # the training split's mean HCAL image
    assert hcal_mean.shape == (8, 8, 1) and hcal_mean.sum() > 0


def test_muon_records_hold_the_image_the_isolation_cones_weights_and_cells(samples):
    from jettf.features.calorimeter import isolation_cones

    info = _built(samples, "muon_images")
    arrays = samples["muons"][1]
    assert info.class_names == ["non-prompt", "prompt"] and not info.extra_image_specs
    x, y, w = _records(info, ("image", "global_features", "constituents", "jet"))
    rows = _rows(arrays, x["jet"][:, 0])
    np.testing.assert_array_equal(x["image"][..., 0], arrays["image_et"][rows])
    np.testing.assert_array_equal(w, arrays["weight"][rows])
    np.testing.assert_allclose(x["global_features"], isolation_cones(arrays["image_et"], arrays["pt"])[rows],
                               rtol=1e-6)
    cells = arrays["cells"][rows][..., :4]  # the stored cells, without their calorimeter column
    np.testing.assert_array_equal(x["constituents"][:, :cells.shape[1]], cells)


def test_electron_cnn_trains_on_both_images_with_the_stored_weights_exports_and_explains(samples, tmp_path):
    import json

    import onnxruntime
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from jettf.data.sources import ELECTRON_SOURCE_FEATURES
    from jettf.explain.__main__ import main as explain_main
    from jettf.serving import export_run
    from jettf.training import load_run

    out = tmp_path / "electrons"
    assert train.main(["--task", "binary", "--dataset", "electron_images/quick", "--quick", "--n-boot", "20",
                       "--manual-dir", str(samples["electrons"][0]), "--data-dir", str(samples["data_dir"]),
                       "--out", str(out)]) == 0
    metrics = RunDir(out).read_metrics()
    config = RunDir(out).read_config()
    assert config["resolved"]["inputs"] == ["image", "hcal"]
    test = metrics["test"]
    assert test["auc"] > MIN_AUC
    # Weighted and unweighted figures are scikit-learn's on model.keras' test predictions, with the stored weights.
    tagger, _, data = load_run(out, "test")
    assert sorted(t.name.split(":")[0] for t in tagger.inputs) == ["hcal", "image"]
    probs = tagger.predict({"image": data["images"], **data["extra_images"]}, verbose=0)
    arrays = samples["electrons"][1]
    weights = arrays["weight"][_rows(arrays, data["jets"].jet_pt)]
    is_electron = data["labels"] == 1
    assert test["auc"] == pytest.approx(roc_auc_score(is_electron, probs[:, 1]), abs=1e-5)
    assert test["weighted"]["auc"] == pytest.approx(roc_auc_score(is_electron, probs[:, 1], sample_weight=weights),
                                                    abs=1e-5)
    report = (out / "report.md").read_text()
    assert "0.972" in report and "never released" in report  # 004 Table 3.1 beside it, with the caveat
    assert "Trained with sample weights (the dataset's stored per-candidate weights)" in report
    # The report's mean HCAL images per class (004 Fig. 3.3) are the test candidates' mean 8x8 towers.
    from jettf.training import run_dataset
    from jettf.training.trainer import class_mean_images

    assert "plots/average_hcal.png" in report and (out / "plots" / "average_hcal.png").exists()
    means = class_mean_images(run_dataset(out)[1], "test", image="hcal")
    test_rows = _rows(arrays, data["jets"].jet_pt)
    for label, name in enumerate(("jet", "electron")):
        expected = arrays["hcal_et"][test_rows][data["labels"] == label].mean(axis=0)
        np.testing.assert_allclose(means[name][..., 0], expected, rtol=1e-5, atol=1e-7)
    # Export: both images in serving_default, no from_constituents; SavedModel and ONNX agree with Keras.
    target = export_run(out, tmp_path / "saved" / "electrons", log=lambda m: None, formats=("savedmodel", "onnx"))
    meta = json.loads((target / "assets" / "jettf_model.json").read_text())
    assert list(meta["signatures"]) == ["serving_default"]
    assert sorted(meta["signatures"]["serving_default"]["inputs"]) == ["hcal", "image"]
    feeds = {"image": data["images"][:40], "hcal": data["extra_images"]["hcal"][:40]}
    served = tf.saved_model.load(str(target)).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in feeds.items()})["probabilities"].numpy()
    np.testing.assert_allclose(served, probs[:40], atol=1e-5)
    session = onnxruntime.InferenceSession(str(target / "serving_default.onnx"))
    np.testing.assert_allclose(session.run(["probabilities"], feeds)[0], probs[:40], atol=1e-5)
    # Explain: Grad-CAM on the ECAL tower (not the 8x8 HCAL one), the guided search over the cells, started from
    # the dataset's expert features as 004 section 3.8 (the model itself reads only the images).
    assert explain_main([str(out), "--max-jets", "48"]) == 0
    summary = json.loads((out / "explain" / "explain.json").read_text())
    assert summary["gradcam_layers"] == {"calo_cnn": "calo_cnn/block2_conv2"} and "search" in summary
    search = json.loads((out / "explain" / "ado_search.json").read_text())
    assert search["start_features"] == list(ELECTRON_SOURCE_FEATURES) == list(data["start_features"])


def test_particle_models_read_the_muon_cells_at_angles_from_the_muon(samples, tmp_path):
    import jettf.data as jd
    import jettf.models as zoo
    from jettf.training import load_tagger

    out = tmp_path / "pfn"
    assert train.main(["--task", "binary", "--dataset", "muon_images/quick", "--quick", "--model", "pfn",
                       "--n-boot", "20", "--manual-dir", str(samples["muons"][0]),
                       "--data-dir", str(samples["data_dir"]), "--out", str(out)]) == 0
    assert RunDir(out).read_metrics()["test"]["auc"] > MIN_AUC_PFN  # non-prompt muons: a core of hadrons
    tagger = load_tagger(out)
    assert zoo.model_metadata(tagger)["options"] == {"center": "origin", "particle_features": "linear"}
    # 004 App. A.1.2: the cells' (E_T, delta eta, delta phi) standardized with the training cells' statistics.
    info = _built(samples, "muon_images")
    cells = np.concatenate([x["constituents"][x["constituents"][..., 0] > 0] for x, _ in
                            jd.make_dataset(info, "train", inputs=("constituents",)).as_numpy_iterator()])
    np.testing.assert_allclose(np.ravel(zoo.find_layer(tagger, zoo.PARTICLE_NORM_NAME).mean),
                               cells[:, :3].mean(axis=0), rtol=1e-4, atol=1e-6)
    assert "mass_sculpting" not in RunDir(out).read_metrics()["test"]  # muons carry no mass to sculpt


def test_second_images_cannot_be_flipped_at_random_on_their_own():
    import jettf.models as zoo
    from jettf.images import ImagePreparation, ImageSpec

    ecal = ImagePreparation(ImageSpec(npix=31, extent=0.3875, channels=("ecal_et",)))
    hcal = ImagePreparation(ImageSpec(npix=8, extent=0.4, channels=("hcal_et",)), name="hcal_preparation")
    with pytest.raises(ValueError, match="flipped at random on its own"):
        zoo.build("calo_cnn", 2, preparation=ecal, flips="both", extra_preparations={"hcal": hcal},
                  extra_images={"hcal": (8, 8, 1)}, filters=4, units=4)
    tagger = zoo.build("calo_cnn", 2, preparation=ecal, extra_preparations={"hcal": hcal},
                       extra_images={"hcal": (8, 8, 1)}, filters=4, units=4)
    assert sorted(t.name.split(":")[0] for t in tagger.inputs) == ["hcal", "image"]


def test_pipeline_errors_name_the_dataset_and_what_it_holds(samples):
    import jettf.data as jd

    info = _built(samples, "muon_images")
    with pytest.raises(ValueError, match=r"inputs \['hcal'\] unknown"):
        jd.make_dataset(info, "test", inputs=("image", "hcal"))


def test_dense_network_on_the_expert_features_alone(samples, tmp_path, capsys):
    """004 Table 3.1's "HL" network: ``--model dense --global-features`` reads only the seven features + mass."""
    args = ["--task", "binary", "--dataset", "electron_images/quick", "--quick", "--model", "dense", "--n-boot", "20",
            "--manual-dir", str(samples["electrons"][0]), "--data-dir", str(samples["data_dir"])]
    assert train.main([*args, "--out", str(tmp_path / "no_features")]) == 2
    assert "reads only the global features; add --global-features (electron_images/quick's: r_had" in \
        capsys.readouterr().err
    out = tmp_path / "dense"
    assert train.main([*args, "--global-features", "--out", str(out)]) == 0
    assert RunDir(out).read_config()["resolved"]["inputs"] == ["global_features"]
    assert RunDir(out).read_metrics()["test"]["auc"] > MIN_AUC


def test_a_relative_data_dir_reads_its_records(samples, tmp_path, monkeypatch):
    """``--data-dir data`` (relative): the records are found (TFDS' relative file paths were once prefixed twice)."""
    import jettf.data as jd

    monkeypatch.chdir(tmp_path)
    info = jd.build("muon_images/quick", data_dir="relative_data", manual_dir=str(samples["muons"][0]))
    batches = list(jd.make_dataset(info, "test", batch_size=16, inputs=("global_features",)).as_numpy_iterator())
    assert sum(len(y) for _, y in batches) == info.splits["test"]
    assert jd.load_info("muon_images/quick", "relative_data").splits == info.splits
