"""Training, evaluation and run directories (``python -m jettf.train``).

:func:`load_run` is how other tools (explain, export) read a finished run:
the model that takes dense images, the resolved configuration, and a split's
jets as the model sees them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from jettf.training.run_dir import RunDir

__all__ = ["RunDir", "load_run", "dense_image_model"]


def dense_image_model(model):
    """The model that takes a dense ``image``: unwraps :func:`jettf.data.wrap_model`'s device-densify front end."""
    import keras

    if "image_index" not in {t.name.split(":")[0] for t in model.inputs}:
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        raise ValueError(f"model {model.name!r}: expected one wrapped image model, found {len(inner)}")
    return inner[0]


def load_run(run_dir, split: str = "test", max_jets: Optional[int] = None):
    """``(model, config, data)`` of a run directory.

    ``model`` takes dense images (see :func:`dense_image_model`); ``data`` is a dict
    with ``images`` ``[N, H, W, C]`` prepared exactly as in training (no flips),
    ``labels`` ``[N]`` (after the run's class selection), ``jets`` (a JetBatch of the
    same jets, from the stored constituents) and ``global_features`` when the model
    uses them. ``max_jets`` keeps the first jets of the split.
    """
    import keras

    import jettf.models  # noqa: F401 - registers the custom layers for loading
    from jettf.jets import JetBatch
    from jettf.training.trainer import _prepare_data

    run = RunDir(run_dir)
    config = run.read_config()
    data = _prepare_data(config, log=lambda message: None)
    model = dense_image_model(keras.models.load_model(run.model_path))
    prep = data.prep
    if prep is not None and prep.densify == "device":
        import dataclasses

        prep = dataclasses.replace(prep, densify="host")
    inputs = tuple(k for k in data.inputs if k != "constituents") + ("constituents", "jet")
    import jettf.data as jd

    ds = jd.make_dataset(data.info, split, batch_size=256, inputs=inputs, training=False, classes=data.classes,
                         prep=prep, seed=config["seed"])
    if max_jets is not None:
        ds = ds.unbatch().take(max_jets).batch(256)
    parts = {}
    labels = []
    for x, y in ds:
        for key, value in x.items():
            parts.setdefault(key, []).append(np.asarray(value))
        labels.append(np.asarray(y))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    constituents, jet = arrays.pop("constituents"), arrays.pop("jet")
    jets = JetBatch.from_ptetaphie(
        *np.moveaxis(constituents, -1, 0), labels=np.concatenate(labels), class_names=data.class_names,
        jet_pt=jet[:, 0], jet_eta=jet[:, 1], jet_phi=jet[:, 2], jet_mass=jet[:, 3],
    )
    result = {"labels": np.concatenate(labels), "jets": jets}
    if "image" in arrays:
        result["images"] = arrays["image"]
    if "global_features" in arrays:
        result["global_features"] = arrays["global_features"]
    return model, config, result
