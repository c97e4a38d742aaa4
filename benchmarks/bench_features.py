"""Speed and accuracy of the global jet features (jettf.features), beside fastjet-contrib.

Prints markdown tables:

1. the full exact 47-feature set (the 002 preset, ``FeatureSpec()``): jets per
   CPU-second of one core for ``compute_features`` and for fastjet-contrib
   (Nsubjettiness + EnergyCorrelator through the ``fastjet`` package, one call per
   feature over the whole batch, as awkward arrays) on the same jets, their ratio,
   and the largest relative difference of the values (they are the same features);
   rows: top-like jets of ~50 constituents (the public top-tagging multiplicity)
   and Pythia top jets (~75 constituents);
2. where ``compute_features``' time goes, per feature family;
3. the error of the truncated option (``ecfg3_max_constituents=40``,
   ``ecf4_max_constituents=20``) against the exact values on Pythia top/QCD jets;
4. peak memory of ``compute_features`` per 10k 50-constituent jets (a fresh process).

One BLAS thread; numba and fastjet run on one thread; the rates are jets per
CPU-second (``time.process_time``), best of ``--repeats`` (fastjet-contrib: best of
``--contrib-repeats``), so other jobs on the machine matter less (the load average
is printed with each table).

    python benchmarks/bench_features.py [--n-jets 256] [--constituents 50] [--pythia-jets 200]
                                        [--contrib-top-jets 100] [--repeats 3] [--contrib-repeats 2]
                                        [--memory-jets 10000] [--skip-memory]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core figures: one thread (set before numpy loads)

import argparse  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from jettf.features import DegenerateJetWarning, FeatureSpec, compute_features, feature_validity  # noqa: E402
from jettf.features.spec import _fmt  # noqa: E402
from jettf.jets import JetBatch  # noqa: E402

NO_ECF = dict(c_series=(), d2_params=(), u_series=(), m_series=(), n_series=())
ECF_ONLY = dict(kinematics=False, tau_ratios=())
FAMILIES = {
    "full exact 002 set (47)": FeatureSpec(),
    "N-subjettiness ratios (15)": FeatureSpec(kinematics=False, **NO_ECF),
    "C1, C2, D2, U1 (pairs, ECFN(3) by matrix products; 11)": FeatureSpec(**ECF_ONLY, c_series=(1, 2), u_series=(1,),
                                                                           m_series=(), n_series=()),
    "U2, M2, N2 (triplets; 7)": FeatureSpec(**ECF_ONLY, c_series=(), d2_params=(), u_series=(2,), m_series=(2,),
                                            n_series=(2,)),
    "C3, U3, M3, N3 (quadruplets; 9)": FeatureSpec(**ECF_ONLY, c_series=(3,), d2_params=(), u_series=(3,),
                                                   m_series=(3,), n_series=(3,)),
}
TRUNCATED = dict(ecfg3_max_constituents=40, ecf4_max_constituents=20)
TARGETS = {"50": (500, "issue 12: >= 500 jets/s and >= 10x"), "pythia": (100, "issue 12: >= 100 jets/s and >= 10x")}


def top_like_jets(n_jets: int, n_constituents: int, seed: int = 0) -> JetBatch:
    """Three-prong jets of 600 GeV with exactly ``n_constituents`` constituents each.

    Prong axes within ~0.3 of the jet axis, prong pt shares from a Dirichlet(3, 3, 3),
    constituent pt from a Pareto(1.5) spectrum, softer constituents wider.
    """
    rng = np.random.default_rng(seed)
    shape = (n_jets, n_constituents)
    axis_eta, axis_phi = rng.normal(0, 0.25, (2, n_jets, 3))
    share = rng.dirichlet((3.0, 3.0, 3.0), n_jets)
    prong = rng.integers(0, 3, shape)
    weight = rng.pareto(1.5, shape) + 0.05
    pt = weight / weight.sum(axis=1, keepdims=True) * 600.0 * np.take_along_axis(share, prong, 1) * 3.0
    spread = np.minimum(0.05 + 0.3 / np.sqrt(weight), 0.4)
    eta = np.take_along_axis(axis_eta, prong, 1) + rng.normal(0, 1, shape) * spread
    phi = np.take_along_axis(axis_phi, prong, 1) + rng.normal(0, 1, shape) * spread
    return JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta))


def pythia_jets(n_per_class: int, seed: int = 1) -> JetBatch:
    from jettf.generate import generate_jets

    return generate_jets("top_tagging", n_per_class, seed)


def cpu_seconds(fn, repeats: int):
    """Best CPU time of ``repeats`` calls (the machine may be shared) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def load() -> str:
    return "%.1f" % os.getloadavg()[0]


# ------------------------------------------------------------- fastjet-contrib
def awkward_events(batch: JetBatch):
    """Constituents as fastjet takes them, (px, py, pz, E) computed in float64 exactly as ``compute_features`` does
    (float32 trigonometry would move nearly collinear angles by ~1e-5 relative, and U_3 with them)."""
    import awkward as ak

    pt, eta, phi = (a.astype(np.float64) for a in (batch.pt, batch.eta, batch.phi))
    m = batch.mask
    fields = {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": batch.energy.astype(np.float64)}
    return ak.unflatten(ak.zip({k: v[m] for k, v in fields.items()}), batch.n_constituents)


def contrib_features(events, spec: FeatureSpec) -> dict:
    """The spec's N-subjettiness and correlator features from fastjet-contrib, on all constituents of ``events``.

    One ClusterSequence (kt, R = 1000: the whole jet) and one call per feature over the
    batch, each of them a C++ loop over the jets: fastjet-contrib at its fastest from Python.
    """
    import awkward as ak
    import fastjet

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))

        def ecf(**kwargs):
            return ak.to_numpy(cs.exclusive_jets_energy_correlator(njets=1, **kwargs))

        ns = sorted({n for r in spec.tau_ratios for n in (r, r - 1)})
        for b in spec.tau_betas if ns else ():
            taus = cs.njettiness(measure_definition="NormalizedMeasure", axes_definition=spec.tau_axes, njets=ns,
                                 beta=b, R0=spec.jet_radius)
            taus = ak.to_numpy(taus).reshape(-1, len(ns))
            for r in spec.tau_ratios:
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[f"tau{r}{r - 1}_b{_fmt(b)}"] = taus[:, ns.index(r)] / taus[:, ns.index(r - 1)]
        for n in spec.c_series:
            for b in spec.c_betas:
                out[f"c{n}_b{_fmt(b)}"] = ecf(func="cseries", npoint=3, beta=b) if n == 3 else ecf(func=f"c{n}", beta=b)
        for a, b in spec.d2_params:
            out[f"d2_a{_fmt(a)}_b{_fmt(b)}"] = ecf(func="generalizedd2", alpha=a, beta=b)
        for series, func in (("u", "useries"), ("m", "mseries"), ("n", "nseries")):
            for n in getattr(spec, f"{series}_series"):
                for b in getattr(spec, f"{series}_betas"):
                    out[f"{series}{n}_b{_fmt(b)}"] = ecf(func=func, npoint=n, beta=b)
    return out


def max_relative_difference(batch, spec, values, names, reference) -> float:
    valid, _ = feature_validity(batch, spec)
    worst = 0.0
    for name, expected in reference.items():
        col = names.index(name)
        rows = valid[:, col] & np.isfinite(expected) & (expected != 0)
        if rows.any():
            worst = max(worst, float(np.max(np.abs(values[rows, col] / expected[rows] - 1))))
    return worst


def versus_contrib_table(batches: dict, repeats: int, contrib_repeats: int) -> dict:
    spec = FeatureSpec()
    print(f"\n## Exact 002 feature set ({len(spec.names())} features, `FeatureSpec()`), one core: jettf vs "
          f"fastjet-contrib on the same jets and features (load average {load()})\n")
    print("| jets | n jets | constituents (mean, max) | jettf exact | fastjet-contrib | ratio | max rel. diff "
          "| target |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    rates = {}
    for key, (label, batch) in batches.items():
        compute_features(batch[:4], spec)  # load the compiled kernels
        ours, (values, names) = cpu_seconds(lambda: compute_features(batch, spec), repeats)
        events = awkward_events(batch)
        theirs, reference = cpu_seconds(lambda: contrib_features(events, spec), contrib_repeats)
        diff = max_relative_difference(batch, spec, values, names, reference)
        goal, why = TARGETS[key]
        ok = len(batch) / ours >= goal and theirs / ours >= 10
        rates[key] = (len(batch) / ours, len(batch) / theirs)
        print(f"| {label} | {len(batch)} | {batch.n_constituents.mean():.0f}, {batch.n_constituents.max()} "
              f"| **{len(batch) / ours:,.0f} jets/s** | {len(batch) / theirs:,.1f} jets/s | **{theirs / ours:,.0f}x** "
              f"| {diff:.1e} | {why}: {'met' if ok else 'NOT met'} |", flush=True)
    print(f"\n(load average after: {load()})")
    return rates


def family_table(batches: dict, repeats: int) -> None:
    print(f"\n## Where jettf's time goes (jets per CPU-second per family, exact; load average {load()})\n")
    print("| features | " + " | ".join(label for label, _ in batches.values()) + " |")
    print("|---|" + "---:|" * len(batches))
    for label, spec in FAMILIES.items():
        cells = []
        for _, batch in batches.values():
            compute_features(batch[:4], spec)
            seconds, _ = cpu_seconds(lambda: compute_features(batch, spec), repeats)
            cells.append(f"{len(batch) / seconds:,.0f} ({seconds / len(batch) * 1e3:.2f} ms/jet)")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


# ----------------------------------------------------------------- truncation
def truncation_table(batch: JetBatch) -> None:
    from sklearn.metrics import roc_auc_score

    exact_spec = FeatureSpec(tau_ratios=())
    truncated_spec = FeatureSpec(tau_ratios=(), **TRUNCATED)
    exact, names = compute_features(batch, exact_spec)
    truncated, truncated_names = compute_features(batch, truncated_spec)
    k3, k4 = TRUNCATED["ecfg3_max_constituents"], TRUNCATED["ecf4_max_constituents"]
    pt = np.sort(np.where(batch.mask, batch.pt, 0.0), axis=1)[:, ::-1].astype(np.float64)
    kept = {k: np.median(pt[:, :k].sum(axis=1) / pt.sum(axis=1)) for k in (k3, k4)}
    n = batch.n_constituents
    top = batch.labels == list(batch.class_names).index("top")
    print(f"\n## Truncated option (`ecfg3_max_constituents={k3}, ecf4_max_constituents={k4}`) vs exact, "
          f"{len(batch)} Pythia top/QCD jets ({top.sum()} top)\n")
    print(f"Constituents: median {np.median(n):.0f}, 90% {np.percentile(n, 90):.0f}, max {n.max()}; "
          f"{(n > k3).mean():.0%} of jets have more than {k3}, {(n > k4).mean():.0%} more than {k4}. "
          f"Median pt fraction kept: hardest {k3}: {kept[k3]:.3f}, hardest {k4}: {kept[k4]:.3f}.\n")
    print("| feature (truncated name) | median abs rel error | 90% abs rel error | median truncated/exact "
          "| single-feature AUC top vs QCD: exact -> truncated |")
    print("|---|---:|---:|---:|---|")
    for i, name in enumerate(truncated_names):
        if not re.search(r"_k\d+$", name):
            continue
        base = names.index(re.sub(r"_k\d+$", "", name))
        x, r = truncated[:, i].astype(np.float64), exact[:, base].astype(np.float64)
        ok = r != 0
        ratio = x[ok] / r[ok]
        aucs = [roc_auc_score(top, v) for v in (r, x)]
        print(f"| {name} | {np.median(np.abs(ratio - 1)):.1%} | {np.percentile(np.abs(ratio - 1), 90):.1%} "
              f"| {np.median(ratio):.3f} | {aucs[0]:.3f} -> {aucs[1]:.3f} |")


# --------------------------------------------------------------------- memory
def memory_table(n_jets: int, n_constituents: int) -> None:
    """Peak RSS growth during one ``compute_features`` call, in a fresh process.

    The kernel's peak-RSS mark (VmHWM) is reset just before the call by writing 5 to
    /proc/self/clear_refs, so building the input does not count.
    """
    code = (
        "import os\n"
        "for v in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS'): os.environ[v] = '1'\n"
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "from bench_features import top_like_jets\n"
        "from jettf.features import compute_features\n"
        "def status(key):\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])\n"
        "batch = top_like_jets(%d, %d, seed=3)\n"
        "compute_features(batch[:8])\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS')\n"
        "values, names = compute_features(batch)\n"
        "print(before, status('VmHWM'), values.nbytes)\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), n_jets, n_constituents)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, peak, nbytes = (int(x) for x in out[-3:])
    inc = (peak - before) / 1024
    print(f"\n## Peak memory, {n_jets} jets of {n_constituents} constituents, default spec (fresh process)\n")
    print("| RSS before the call (input included) | peak RSS during | increase | per 10k jets | output array |")
    print("|---|---|---|---|---|")
    print(f"| {before / 1024:.0f} MiB | {peak / 1024:.0f} MiB | {inc:.0f} MiB | {inc * 1e4 / n_jets:.0f} MiB "
          f"| {nbytes / 2**20:.1f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jets", type=int, default=256, help="synthetic top-like jets")
    parser.add_argument("--constituents", type=int, default=50, help="constituents per synthetic jet")
    parser.add_argument("--pythia-jets", type=int, default=200, help="Pythia jets per class (top and QCD)")
    parser.add_argument("--contrib-top-jets", type=int, default=100,
                        help="Pythia top jets in the side-by-side table (fastjet-contrib takes ~0.1 s per jet)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contrib-repeats", type=int, default=2)
    parser.add_argument("--memory-jets", type=int, default=10_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DegenerateJetWarning)

    print(f"# jettf.features benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"load average {' '.join('%.1f' % x for x in os.getloadavg())})")
    pythia = pythia_jets(args.pythia_jets)
    tops = pythia.select(np.flatnonzero(pythia.labels == list(pythia.class_names).index("top"))[: args.contrib_top_jets])
    batches = {
        "50": (f"top-like, {args.constituents} constituents each", top_like_jets(args.n_jets, args.constituents)),
        "pythia": ("Pythia top jets (top-tagging sample)", tops),
    }
    versus_contrib_table(batches, args.repeats, args.contrib_repeats)
    family_table(batches, args.repeats)
    truncation_table(pythia)
    if not args.skip_memory:
        memory_table(args.memory_jets, args.constituents)
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"load average at the end {' '.join('%.1f' % x for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
