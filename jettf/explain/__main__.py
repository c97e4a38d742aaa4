"""``python -m jettf.explain RUN_DIR``: explain what a trained tagger learned.

Writes to ``RUN_DIR/explain/`` (or ``--out``):

* ``average_images.png``, ``difference_<channel>.png``: class averages (a panel per class and channel) and
  <signal> - <background> (001 section 6) of the physical images (before standardization), by :mod:`jettf.plots`;
* ``pearson_<signal>.png`` + ``pearson.npz``: Pearson r between each pixel and the network's signal probability;
* ``gradcam.png`` + ``gradcam.npz``: Grad-CAM per branch and class (000 section 4.2.2), averaged over the jets
  of each class, with the class's average image as contours;
* ``ado_search.md`` / ``ado_search.json``: the guided EFP search (004 sections 3.8 and 4.5), when the test
  data carries constituents;
* ``explain.json``: what was done, with which settings, and the files.

The only code tied to the run-directory layout is :func:`load_explain_inputs` (marked below); everything
else works from an :class:`ExplainInputs` and can be called as :func:`run_explain`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from jettf.training.report import EXPLAIN_HEADING as REPORT_HEADING
from jettf.training.run_dir import RunDir
from jettf.utils import atomic_path

__all__ = ["ExplainInputs", "load_explain_inputs", "run_explain", "main"]


@dataclasses.dataclass
class ExplainInputs:
    """What the explain tools need from a run.

    ``model`` takes ``images`` (and ``global_features``) as they are here; ``images`` ``[N, H, W, C]`` are the
    physical images (the ImageSpec's units, e.g. pt in GeV or pT_rel, before any standardization), which the
    average, difference and Pearson images are made of; ``labels`` ``[N]``; ``extent``: the images' window, a
    half-width R or (eta_min, eta_max, phi_min, phi_max); ``gradcam_extent``: the window of the image the
    convolutions see (a crop narrows it; default ``extent``); ``jets``: the same N jets as a JetBatch (for the
    EFP search; ``None`` skips it); ``global_features`` ``[N, F]`` when the model takes them; ``other_inputs``:
    the model's further inputs by name (a second image ``hcal``, ``constituents`` of a particle model), ``[N, ...]``
    each; ``signal`` / ``background``: class indices for difference images, Pearson maps and the search;
    ``start_features``: ``{name: [N]}`` the dataset's own start set for the search (004's expert features or
    isolation cones), used instead of jet-level observables when given.
    """

    model: object
    images: np.ndarray
    labels: np.ndarray
    class_names: list
    extent: object
    jets: Optional[object] = None
    global_features: Optional[np.ndarray] = None
    channel_names: Optional[list] = None
    channel_units: Optional[list] = None
    signal: int = 1
    background: int = 0
    gradcam_extent: Optional[object] = None
    other_inputs: Optional[dict] = None
    start_features: Optional[dict] = None


def load_explain_inputs(run_dir, signal: Optional[int] = None, background: int = 0,
                        max_jets: Optional[int] = None) -> ExplainInputs:
    """Load a run directory into :class:`ExplainInputs` (adapt here when the run-directory contract changes)."""
    from jettf.models import find_layer
    from jettf.training import load_run

    model, config, test = load_run(run_dir, max_jets=max_jets)
    resolved = RunDir(run_dir).read_config()["resolved"]
    spec = test["image_spec"]  # the dataset's images: the model's input, or beside a particle model's
    other = dict(test["extra_images"])
    if "constituents" in resolved["inputs"]:
        jets = test["jets"]
        other["constituents"] = np.stack([jets.pt, jets.eta, jets.phi, jets.energy], axis=-1).astype(np.float32)
    try:
        window = find_layer(model, "image_preparation").window
    except ValueError:  # a model without a preparation layer sees the whole image
        window = spec.extent
    class_names = list(resolved["class_names"])
    return ExplainInputs(
        model=model,
        images=test["images"],
        labels=test["labels"],
        class_names=class_names,
        extent=spec.extent,
        gradcam_extent=window,
        jets=test["jets"],
        global_features=test.get("global_features"),
        channel_names=list(spec.channels),
        channel_units=spec.channel_units(),
        signal=len(class_names) - 1 if signal is None else int(signal),
        background=int(background),
        other_inputs=other,
        start_features=test.get("start_features"),
    )





def add_report_section(run_dir, out: Path) -> Path:
    """Put (or replace) a section in ``RUN_DIR/report.md`` linking the explain outputs."""
    report = Path(run_dir) / "report.md"
    text = report.read_text() if report.exists() else ""
    text = text.split(f"\n{REPORT_HEADING}")[0].rstrip() + "\n\n"
    rel = os.path.relpath(out, Path(run_dir))
    lines = [REPORT_HEADING, "", f"From `python -m jettf.explain` (files in `{rel}/`).", ""]
    for png in sorted(out.glob("*.png")):
        lines += [f"![{png.stem}]({rel}/{png.name})", ""]
    search = out / "ado_search.md"
    if search.exists():
        lines += [search.read_text().replace("# Guided", "### Guided", 1), ""]
    with atomic_path(report) as tmp:
        tmp.write_text(text + "\n".join(lines))
    return report


def _model_inputs(inp: ExplainInputs, index) -> dict:
    feeds = {"image": inp.images[index], **{k: np.asarray(v)[index] for k, v in (inp.other_inputs or {}).items()}}
    if inp.global_features is not None:
        feeds["global_features"] = np.asarray(inp.global_features)[index]
    return feeds


def _predict(model, feeds: dict, batch_size: int) -> np.ndarray:
    names = set(model.input) if isinstance(model.input, dict) else {"image"}
    feeds = {k: v for k, v in feeds.items() if k in names}
    return np.asarray(model.predict(feeds, batch_size=batch_size, verbose=0), dtype=np.float64)


def _has_conv(model) -> bool:
    from .gradcam import find_conv_layers

    try:
        find_conv_layers(model)
    except ValueError:
        return False
    return True


def run_explain(
    inp: ExplainInputs, out_dir, *, max_jets: int = 4000, gradcam_jets: int = 64, search: bool = True,
    efp_dmax: int = 3, kappas: Sequence[float] = (1.0,), betas: Sequence[float] = (0.5, 1.0, 2.0),
    start_features: Optional[Sequence[str]] = None, max_steps: int = 5, seed: int = 0,
    batch_size: int = 64, log=print,
) -> dict:
    """Run every explain step on ``inp`` and write the files listed in the module docstring; returns the
    summary written to ``explain.json``. The guided search starts from ``start_features``
    (:func:`jettf.explain.search.jet_observables` names); None: ``inp.start_features`` when the dataset has them,
    else ``jet_mass`` and ``jet_pt``; ``()``: from nothing."""
    from jettf import plots
    from jettf.utils import write_json

    from . import images as maps
    from .gradcam import grad_cam
    from .images import crop_window, weight_inside
    from .plots import plot_gradcam, plot_pearson_map

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(inp.labels).astype(np.int64)
    names = [str(c) for c in inp.class_names]
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(labels))[:max_jets])
    labels = labels[keep]
    images = np.asarray(inp.images)[keep]
    n_channels = images.shape[-1] if images.ndim == 4 else 1
    channels = inp.channel_names or [f"channel{i}" for i in range(n_channels)]
    sig, bkg = int(inp.signal), int(inp.background)
    summary = {"n_jets": int(len(keep)), "signal": names[sig], "background": names[bkg], "files": {}, "seed": seed}

    log(f"[explain] {len(keep)} jets, classes {names}; predicting")
    probs = _predict(inp.model, _model_inputs(inp, keep), batch_size)
    score = probs[:, sig]

    # ---- average and difference images (001 section 6), of the physical images
    means = maps.class_averages(images, labels, names)
    path = plots.plot_average_images(means, inp.extent, out / "average_images.png", channel_names=channels,
                                     units=inp.channel_units, title="Average images per class")
    summary["files"]["average_images"] = path.name
    if names[sig] in means and names[bkg] in means:
        for k, ch in enumerate(channels):
            path = plots.plot_difference_image(means[names[sig]][..., k], means[names[bkg]][..., k], inp.extent,
                                               out / f"difference_{ch}.png", labels=(names[sig], names[bkg]),
                                               title=f"<{names[sig]}> - <{names[bkg]}> ({ch})")
            summary["files"][f"difference_{ch}"] = path.name

    # ---- Pearson correlation of pixel intensity with the network output
    r = maps.pearson_map(images, score)
    np.savez_compressed(out / "pearson.npz", r=r, channels=np.array(channels))
    path = plot_pearson_map(r, inp.extent, out / f"pearson_{names[sig]}.png", channel_names=channels,
                            output_label=f"P({names[sig]})")
    summary["files"]["pearson"] = path.name

    # ---- Grad-CAM per branch and class (000 section 4.2.2)
    if _has_conv(inp.model):
        pick = np.concatenate([np.flatnonzero(labels == c)[:gradcam_jets] for c in np.unique(labels)])
        log(f"[explain] Grad-CAM on {len(pick)} jets")
        feeds = _model_inputs(inp, keep[pick])
        model_keys = set(inp.model.input) if isinstance(inp.model.input, dict) else {"image"}
        cam = grad_cam(inp.model, {k: v for k, v in feeds.items() if k in model_keys}, class_names=names,
                       batch_size=max(1, batch_size // 4))
        per_class = cam.class_means(labels[pick])
        np.savez_compressed(out / "gradcam.npz", **{f"{b}__{c}": m for b, d in per_class.items() for c, m in d.items()})
        window = inp.gradcam_extent if inp.gradcam_extent is not None else inp.extent
        summary["gradcam_weight_inside_r02"] = {
            b: {c: round(weight_inside(m, window, 0.2), 4) for c, m in d.items()} for b, d in per_class.items()}
        path = plot_gradcam(per_class, window, out / "gradcam.png",
                            background={c: crop_window(m[..., 0], inp.extent, window) for c, m in means.items()},
                            title="Grad-CAM per branch (" + ", ".join(f"{b}: {p}" for b, p in cam.layers.items()) + ")")
        summary["files"]["gradcam"] = path.name
        summary["gradcam_layers"] = cam.layers
    else:
        summary["gradcam_layers"] = None

    # ---- guided EFP search (004 sections 3.8 and 4.5)
    if search and inp.jets is not None:
        from .search import EFPGrid, Observables, efp_observables, guided_search, jet_observables

        binary = np.isin(labels, (sig, bkg))
        jets = inp.jets.select(keep[binary])
        y = (labels[binary] == sig).astype(np.int64)
        log(f"[explain] guided search on {binary.sum()} jets ({names[sig]} vs {names[bkg]})")
        grid = EFPGrid(dmax=efp_dmax, kappas=tuple(kappas), betas=tuple(betas))
        candidates = efp_observables(jets, grid)
        if start_features is None and inp.start_features:
            start = Observables.from_dict({k: np.asarray(v)[keep[binary]] for k, v in inp.start_features.items()})
        else:
            observables = ("jet_mass", "jet_pt") if start_features is None else start_features
            start = jet_observables(jets, observables) if observables else None
        result = guided_search(score[binary], y, candidates, start, max_steps=max_steps, seed=seed)
        text = (f"# Guided EFP search ({names[sig]} vs {names[bkg]})\n\n{result.summary()}\n\n{result.table()}\n\n"
                f"Candidates: {len(candidates)} EFPs, {grid}.\n")
        from jettf.utils import atomic_path

        with atomic_path(out / "ado_search.md") as tmp:
            tmp.write_text(text)
        write_json(out / "ado_search.json", result.to_dict())
        summary["files"]["ado_search"] = "ado_search.md"
        summary["search"] = result.summary()
    write_json(out / "explain.json", summary)
    log(f"[explain] wrote {out}")
    return summary


PROG = "python -m jettf.explain"


def _main(argv) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     epilog="--debug: show tracebacks")
    parser.add_argument("run_dir", help="a training run directory (config.json, model.keras)")
    parser.add_argument("--out", help="output folder (default RUN_DIR/explain)")
    parser.add_argument("--signal", type=int, default=None, help="signal class index (default: the last class)")
    parser.add_argument("--background", type=int, default=0, help="background class index (default 0)")
    parser.add_argument("--max-jets", type=int, default=4000, help="test jets used (the first ones of the split)")
    parser.add_argument("--gradcam-jets", type=int, default=64, help="jets per class for Grad-CAM")
    parser.add_argument("--no-search", action="store_true", help="skip the guided EFP search")
    parser.add_argument("--efp-dmax", type=int, default=3)
    parser.add_argument("--kappas", type=float, nargs="+", default=[1.0])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    inputs = load_explain_inputs(args.run_dir, signal=args.signal, background=args.background,
                                 max_jets=args.max_jets)
    out = Path(args.out) if args.out else Path(args.run_dir) / "explain"
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    run_explain(inputs, out, max_jets=args.max_jets, gradcam_jets=args.gradcam_jets, search=not args.no_search,
                efp_dmax=args.efp_dmax, kappas=args.kappas, betas=args.betas, max_steps=args.max_steps,
                seed=args.seed, log=log)
    log(f"[explain] added '{REPORT_HEADING}' to {add_report_section(args.run_dir, out)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from jettf.cli import run_command

    return run_command(PROG, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
