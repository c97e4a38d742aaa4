"""Training, evaluation and run directories (``python -m jettf.train``).

:func:`load_run` is how other tools (evaluate, explain, export) read a finished run: the tagger
(which takes rendered images in physical units and prepares them itself), the run's configuration,
and a split's jets as rendered, never built or generated on the way.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from jettf.training.config import TrainConfig
from jettf.training.run_dir import RunDir

__all__ = ["RunDir", "TrainConfig", "load_run", "load_tagger", "run_dataset"]


def load_tagger(run_dir):
    """The run's ``model.keras`` (the tagger), with a clear error when the run has not finished."""
    import keras

    import jettf.images.preparation  # noqa: F401 - registers ImagePreparation for loading
    import jettf.models  # noqa: F401 - registers the custom layers for loading

    run = RunDir(run_dir)
    if not run.model_path.exists():
        raise FileNotFoundError(f"{run.model_path}: no such file; the run has not finished (resume it with "
                                f"`python -m jettf.train --resume {run.path}`)")
    return keras.models.load_model(run.model_path)


def run_dataset(run_dir, dataset: Optional[str] = None, data_dir: Optional[str] = None):
    """``(config, TrainingData)`` of a run on its own dataset or on ``dataset`` (same classes); never builds one."""
    import jettf.data as jd
    from jettf.training.trainer import prepare_data

    run = RunDir(run_dir)
    document = run.read_config()
    if document["resolved"].get("seed_dirs"):
        raise ValueError(f"{run.path}: a multi-seed run; use one seed's directory, e.g. "
                         f"{run.path / document['resolved']['seed_dirs'][0]}")
    config = run.read_train_config()
    name = dataset or document["resolved"].get("dataset") or jd.full_name(config.dataset, config.n_jets)
    info = jd.load_info(name, data_dir or config.data_dir)
    data = prepare_data(config, info)
    expected = document["resolved"].get("class_names")
    if expected and data.class_names != expected:
        raise ValueError(f"{info.name}: classes {data.class_names} differ from the run's {expected}")
    return config, data


def load_run(run_dir, split: str = "test", max_jets: Optional[int] = None):
    """``(tagger, config, data)`` of a run directory.

    ``tagger`` is ``model.keras``: it takes the rendered ``image`` (and raw ``global_features``)
    and applies the run's preparation itself. ``data`` is a dict with ``images``
    ``[N, npix, npix, C]`` as rendered (the ImageSpec's physical units, before any
    standardization; also for particle models, which read ``jets``), ``image_spec`` (the
    dataset's), ``labels`` ``[N]`` (after the run's class selection), ``jets`` (a JetBatch
    of the same jets, from the stored constituents), ``global_features`` (raw) when the model
    uses them, ``extra_images`` ``{name: [N, npix', npix', C']}``: the second images the
    model reads (004's ``hcal``), and ``start_features`` ``{name: [N]}``: the dataset's global features
    when its metadata names them the guided search's start (``explain_start``: 004's expert features and
    isolation cones), whether or not the model reads them. ``max_jets`` keeps the first jets of the split.
    """
    import jettf.data as jd
    from jettf.images import ImagePreparation
    from jettf.jets import JetBatch

    config, data = run_dataset(run_dir)
    tagger = load_tagger(run_dir)
    images = ("image",) + tuple(k for k in data.image_inputs if k != "image")
    inputs = images + tuple(k for k in data.inputs if k not in images + ("constituents",)) + ("constituents", "jet")
    start_from_features = data.info.metadata.get("explain_start") == "global_features"
    if start_from_features and "global_features" not in inputs:
        inputs += ("global_features",)
    ds = jd.make_dataset(data.info, split, batch_size=256, inputs=inputs, training=False, classes=data.classes)
    if max_jets is not None:
        ds = ds.unbatch().take(max_jets).batch(256)
    specs = {"image": data.info.image_spec, **data.info.extra_image_specs}
    densify = {name: ImagePreparation(specs[name]) for name in images}
    parts, labels = {}, []
    for x, y in ds.as_numpy_iterator():
        for name, prep in densify.items():
            x[name] = np.asarray(prep.densify(x.pop(f"{name}_index"), x.pop(f"{name}_values")))
        for key, value in x.items():
            parts.setdefault(key, []).append(value)
        labels.append(y)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    constituents, jet = arrays.pop("constituents"), arrays.pop("jet")
    labels = np.concatenate(labels)
    jets = JetBatch.from_ptetaphie(
        *np.moveaxis(constituents, -1, 0), labels=labels, class_names=data.class_names,
        jet_pt=jet[:, 0], jet_eta=jet[:, 1], jet_phi=jet[:, 2], jet_mass=jet[:, 3],
    )
    result = {"labels": labels, "jets": jets, "images": arrays["image"], "image_spec": data.info.image_spec,
              "extra_images": {name: arrays[name] for name in images[1:]}}
    if "global_features" in data.inputs:
        result["global_features"] = arrays["global_features"]
    if start_from_features:
        result["start_features"] = dict(zip(data.info.feature_names, arrays["global_features"].T))
    return tagger, config, result
