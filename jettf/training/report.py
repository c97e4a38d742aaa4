"""The human report of a run: ``report.md`` with tables and PNG plots.

It reads what the run wrote (``metrics.json`` content, per-stage histories,
test predictions, average images) and puts the published figures of the same
setup beside ours, so a physicist sees at once whether the result is in the
expected range (generated samples have no detector simulation, so orderings,
not absolute values, are expected to carry over; see ANCHORS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from jettf import plots
from jettf.utils import atomic_path

__all__ = ["write_report", "PUBLISHED", "EXPLAIN_HEADING", "published_line"]

#: The section ``python -m jettf.explain`` adds to a report; rewriting the report (a resumed run) keeps it.
EXPLAIN_HEADING = "## What the network learned"

# Published test-set figures, keyed by (task, dataset, model): each was measured on the PUBLIC dataset of that
# name (ANCHORS.md), so a report shows it only for runs on those public files.
PUBLISHED = {
    ("multiclass", "jetnet_images", "ensemble"): "Bassa et al. (000, Table 6): accuracy 0.7508, mean AUC 0.935",
    ("binary", "jetnet_images", "ensemble"): "Bassa et al. (000, Tables 2-5): AUC g vs q/t/W/Z 0.871/0.950/0.973/0.974",
    ("binary", "top_tagging_images", "effnet_s"): "Baruah et al. (002, Table 2): images only AUC 0.9773, "
    "1/eps_B 536 at eps_S 30%; with global features AUC 0.9821, 1/eps_B 890 at 30%",
    ("binary", "top_tagging_images", "lenet"): "Baruah et al. (002): LeNet with global features AUC 0.9824, "
    "1/eps_B 951 at eps_S 30%",
    ("binary", "quark_gluon_images", "pfn"): "Komiske, Metodiev, Thaler (2019, EnergyFlow Pythia Z+jet): PFN with "
    "full particle id AUC 0.9052",
}


def published_line(task: str, dataset: str, model: str, source: Mapping) -> str:
    """The report's sentence about published figures: the figure only beside the public data it was measured on."""
    figure = PUBLISHED.get((task, dataset.split("/")[0], model))
    if figure is None:
        return ""
    if (source or {}).get("kind") == "public":
        return f"Published for this setup, on the same public dataset: {figure}."
    return ("Published figures for this setup were measured on the public dataset; this run uses a "
            f"{(source or {}).get('kind', 'non-public')} sample, so they are not shown beside it (compare orderings, "
            "not values).")


def _fmt(value, digits=4) -> str:
    """A figure as a physicist reads it: 0.9312, 242.3, 1,530 (never 1.53e+03); inf and nan spelled out."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if not np.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "n/a")
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def _ci(metrics: Mapping, *keys) -> str:
    node = metrics.get("ci")
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return "-"
        node = node[key]
    return f"[{_fmt(node[0])}, {_fmt(node[1])}]" if isinstance(node, Sequence) and len(node) == 2 else "-"


def _headline_rows(test: Mapping) -> list:
    rows = [("accuracy", _fmt(test["accuracy"]), "-")]
    if "auc" in test:
        rows += [
            ("ROC AUC", _fmt(test["auc"]), _ci(test, "auc")),
            ("1/eps_B at eps_S = 0.3", _fmt(test["rejection"]["0.3"]), _ci(test, "rejection", "0.3")),
            ("1/eps_B at eps_S = 0.5", _fmt(test["rejection"]["0.5"]), _ci(test, "rejection", "0.5")),
            ("1/FPR at TPR = 0.7", _fmt(test["inverse_fpr_at_tpr_0.7"]), _ci(test, "inverse_fpr_at_tpr_0.7")),
            ("max SIC", _fmt(test["max_sic"]), _ci(test, "max_sic")),
        ]
    else:
        rows.append(("mean one-vs-rest AUC", _fmt(test["auc_mean"]), _ci(test, "auc_mean")))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    run_dir,
    metrics: Mapping,
    *,
    y_true: np.ndarray,
    probs: np.ndarray,
    histories: Mapping[str, Mapping],
    average_images: Optional[Mapping[str, np.ndarray]] = None,
    image_extent: Optional[float] = None,
    channel_names: Optional[Sequence[str]] = None,
    channel_unit: Optional[Sequence[str]] = None,
    source: Optional[Mapping] = None,
) -> Path:
    """Write ``report.md`` and its plots into ``run_dir``; returns the report path.

    ``average_images`` are the per-class mean images ``[H, W, C]`` as rendered (physical units),
    ``source`` the dataset's source record (public files or a generated sample).
    """
    run_dir = Path(run_dir)
    plot_dir = run_dir / "plots"
    classes = list(metrics["classes"])
    test = metrics["test"]
    signal = test.get("signal_class")
    figures = {
        "ROC curves": plots.plot_roc(y_true, probs, classes, plot_dir / "roc.png", signal_class=signal),
        "Background rejection": plots.plot_rejection(
            y_true, probs, classes, plot_dir / "rejection.png", signal_class=signal
        ),
        "Confusion matrix": plots.plot_confusion_matrix(y_true, probs, classes, plot_dir / "confusion_matrix.png"),
        "Training curves": plots.plot_training_curves(histories, plot_dir / "training_curves.png"),
    }
    if "mass_sculpting" in test:
        figures["Background mass before and after the cut (mass sculpting)"] = plots.plot_mass_sculpting(
            test["mass_sculpting"], plot_dir / "mass_sculpting.png")
    if average_images:
        figures["Average jet image per class and channel"] = plots.plot_average_images(
            average_images, image_extent, plot_dir / "average_images.png", channel_names=channel_names,
            units=channel_unit,
        )

    source = source or {}
    kind = source.get("kind", "unknown")
    origin = {"public": f"public files in {source.get('directory')}",
              "generated": "a sample generated with Pythia 8 + FastJet"}.get(kind, f"a {kind} source")
    lines = [
        f"# {metrics['task']} tagging: {metrics['model']} on {metrics['dataset']}",
        "",
        f"Classes: {', '.join(classes)}. Data: {metrics['dataset']}, from {origin}.",
        "",
        "## Test set",
        "",
        _table(["figure", "value", "95% bootstrap interval"], _headline_rows(test)),
        "",
    ]
    if "weighted" in test:
        w = test["weighted"]
        rows = [("accuracy", _fmt(test["accuracy"]), _fmt(w["accuracy"]))]
        if "auc" in test:
            rows += [("ROC AUC", _fmt(test["auc"]), _fmt(w["auc"]))]
            rows += [(f"1/eps_B at eps_S = {e}", _fmt(test["rejection"][e]), _fmt(w["rejection"][e]))
                     for e in ("0.3", "0.5")]
        else:
            rows += [("mean one-vs-rest AUC", _fmt(test["auc_mean"]), _fmt(w["auc_mean"]))]
        lines += ["Trained with sample weights (`--reweight`); the same test jets unweighted and weighted:", "",
                  _table(["figure", "unweighted", "weighted"], rows), ""]
    if "mass_sculpting" in test:
        ms = test["mass_sculpting"]
        lines += [f"Mass sculpting (001 Fig. 7): 1/JSD = {_fmt(ms['inverse_jsd'])} between the background mass "
                  f"spectrum before and after the cut at eps_S = {ms['signal_efficiency']:g} (JSD "
                  f"{_fmt(ms['jsd'])}; larger 1/JSD = less sculpting).", ""]
    published = published_line(metrics["task"], metrics["dataset"], metrics["model"], source)
    if published:
        lines += [published, ""]
    if "per_class" in test:
        rows = [
            (c, _fmt(v["auc"]), _fmt(v["rejection"]["0.3"]), _fmt(v["rejection"]["0.5"]))
            for c, v in test["per_class"].items()
        ]
        lines += ["One-vs-rest per class:", "", _table(["class", "AUC", "1/eps_B @ 0.3", "1/eps_B @ 0.5"], rows), ""]
    matrix = test["confusion_matrix"]
    lines += [
        "Confusion matrix (rows: true class, columns: predicted):",
        "",
        _table(["true \\ predicted", *classes], [(c, *row) for c, row in zip(classes, matrix)]),
        "",
    ]
    folds = metrics.get("folds") or []
    if folds:
        score = "auc" if "auc" in folds[0] else "auc_mean"
        rows = [(i, _fmt(f["accuracy"]), _fmt(f[score])) for i, f in enumerate(folds)]
        summary = metrics.get("folds_summary", {})
        if summary:
            rows.append(
                (
                    "mean ± std",
                    f"{_fmt(summary['accuracy']['mean'])} ± {_fmt(summary['accuracy']['std'])}",
                    f"{_fmt(summary[score]['mean'])} ± {_fmt(summary[score]['std'])}",
                )
            )
        lines += ["## Cross-validation", "", _table(["fold", "accuracy", score], rows), ""]
    lines += [
        "## Model and speed",
        "",
        _table(
            ["figure", "value"],
            [
                ("parameters", f"{metrics['params']:,}"),
                ("inference, ms per 100 jets", _fmt(metrics["inference_ms_per_100_jets"], 3)),
                ("training, images/s", _fmt(metrics["train_images_per_s"], 1)),
            ],
        ),
        "",
        "## Plots",
        "",
    ]
    lines += [f"### {title}\n\n![{title}](plots/{Path(path).name})\n" for title, path in figures.items()]
    report = run_dir / "report.md"
    previous = report.read_text() if report.exists() else ""
    if f"\n{EXPLAIN_HEADING}" in previous:  # added by jettf.explain: keep it
        lines += ["", EXPLAIN_HEADING + previous.split(f"\n{EXPLAIN_HEADING}", 1)[1]]
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines))
    return report
