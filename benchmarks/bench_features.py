"""Speed, memory and truncation effect of the global jet features (jettf.features).

Prints markdown tables:

1. jets/s of ``compute_features`` for the full EffNet-S set and per family, on
   200-constituent three-prong (top-like) jets and on Pythia top-tagging jets,
   with one BLAS thread (per-core figures; CPU seconds, best of ``--repeats``);
2. the same features from fastjet-contrib through the ``fastjet`` package, per
   batch (awkward arrays) and per jet (a Python loop of single-jet calls, the
   naive baseline), on the same constituents (same truncation), and exact
   fastjet-contrib on a few jets;
3. peak memory of ``compute_features`` per 10k 200-constituent jets (a fresh process);
4. how much truncating to the hardest k constituents changes the truncated
   series on Pythia jets, against the exact (all-constituent) values.

    python benchmarks/bench_features.py [--n-jets 512] [--constituents 200] [--pythia-jets 100]
                                        [--repeats 3] [--memory-jets 10000] [--skip-memory]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # per-core figures: one BLAS thread (set before numpy loads)

import argparse  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from jettf.features import DegenerateJetWarning, FeatureSpec, compute_features  # noqa: E402
from jettf.jets import JetBatch  # noqa: E402

NO_ECF = dict(c_series=(), d2_params=(), u_series=(), m_series=(), n_series=())
ECF_ONLY = dict(kinematics=False, tau_ratios=())
FAMILIES = {
    "full EffNet-S set (47 features)": FeatureSpec(),
    "jet four-momentum + n_constituents": FeatureSpec(tau_ratios=(), **NO_ECF),
    "N-subjettiness ratios (15)": FeatureSpec(kinematics=False, **NO_ECF),
    "C1, C2, D2, U1 (all constituents, 11)": FeatureSpec(**ECF_ONLY, c_series=(1, 2), u_series=(1,), m_series=(), n_series=()),
    "U2, M2, N2 (hardest 40, 7)": FeatureSpec(**ECF_ONLY, c_series=(), d2_params=(), u_series=(2,), m_series=(2,), n_series=(2,)),
    "C3, U3, M3, N3 (hardest 20, 9)": FeatureSpec(**ECF_ONLY, c_series=(3,), d2_params=(), u_series=(3,), m_series=(3,), n_series=(3,)),
    "EFPs d <= 5 (101, off by default)": FeatureSpec(**ECF_ONLY, **NO_ECF, efp_dmax=5),
}


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


def pythia_jets(n_per_class: int, seed: int = 1):
    try:
        from jettf.generate import generate_jets
    except ImportError:
        return None
    return generate_jets("top_tagging", n_per_class, seed)


def cpu_seconds(fn, repeats: int) -> float:
    """Best CPU time of ``repeats`` calls (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def throughput_table(batches: dict, repeats: int) -> None:
    print("\n## compute_features throughput (one core, CPU time, best of %d)\n" % repeats)
    header = " | ".join(batches)
    print(f"| features | {header} |")
    print("|---|" + "---|" * len(batches))
    for label, spec in FAMILIES.items():
        cells = []
        for batch in batches.values():
            compute_features(batch[:4], spec)  # warm caches (EFP graphs, combination tables)
            seconds = cpu_seconds(lambda: compute_features(batch, spec), repeats)
            cells.append(f"{len(batch) / seconds:,.0f} jets/s ({seconds / len(batch) * 1e3:.2f} ms/jet)")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


# ------------------------------------------------------------- fastjet-contrib
def contrib_features(events, spec: FeatureSpec, events3, events4) -> None:
    """The spec's N-subjettiness and ECF features with fastjet-contrib (values discarded)."""
    import fastjet

    def cluster(ev):
        return fastjet.ClusterSequence(ev, fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))

    cs, cs3, cs4 = cluster(events), cluster(events3), cluster(events4)
    ns = sorted({n for r in spec.tau_ratios for n in (r, r - 1)})
    for b in spec.tau_betas:
        cs.njettiness(measure_definition="NormalizedMeasure", axes_definition=spec.tau_axes, njets=ns, beta=b,
                      R0=spec.jet_radius)
    for n in spec.c_series:
        for b in spec.c_betas:
            if n == 3:
                cs4.exclusive_jets_energy_correlator(njets=1, func="cseries", npoint=3, beta=b)
            else:
                cs.exclusive_jets_energy_correlator(njets=1, func=f"c{n}", beta=b)
    for a, b in spec.d2_params:
        cs.exclusive_jets_energy_correlator(njets=1, func="generalizedd2", alpha=a, beta=b)
    for series, func in (("u", "useries"), ("m", "mseries"), ("n", "nseries")):
        for n in getattr(spec, f"{series}_series"):
            for b in getattr(spec, f"{series}_betas"):
                (cs, cs3, cs4)[n - 1].exclusive_jets_energy_correlator(njets=1, func=func, npoint=n, beta=b)


def awkward_events(batch: JetBatch, k=None):
    import awkward as ak

    b = batch.sort_by_pt()
    if k is not None:
        b = b.pad_to(min(k, b.max_constituents))
    p4 = b.four_momenta()[b.mask]
    return ak.unflatten(ak.zip({"px": p4[:, 1], "py": p4[:, 2], "pz": p4[:, 3], "E": p4[:, 0]}), b.n_constituents)


def contrib_table(batches: dict, n_loop: int) -> None:
    spec = FeatureSpec()
    k3, k4 = spec.ecfg3_max_constituents, spec.ecf4_max_constituents
    print(f"\n## fastjet-contrib for the same 42 N-subjettiness and ECF features (same truncation: hardest {k3} / {k4})\n")
    print("| jets | compute_features | fastjet-contrib per batch | fastjet-contrib per jet (Python loop) |")
    print("|---|---|---|---|")
    for label, batch in batches.items():
        nsub_ecf = FeatureSpec(kinematics=False)
        ours = cpu_seconds(lambda: compute_features(batch, nsub_ecf), 1) / len(batch)
        events = [awkward_events(batch, k) for k in (None, k3, k4)]
        batch_s = cpu_seconds(lambda: contrib_features(*events[:1], spec, *events[1:]), 1) / len(batch)
        few = batch[:n_loop]
        singles = [[awkward_events(few[i], k) for k in (None, k3, k4)] for i in range(len(few))]

        def loop():
            for ev in singles:
                contrib_features(ev[0], spec, ev[1], ev[2])

        loop_s = cpu_seconds(loop, 1) / len(few)
        print(f"| {label} | {1 / ours:,.0f} jets/s | {1 / batch_s:,.1f} jets/s | {1 / loop_s:,.1f} jets/s "
              f"({len(few)} jets) |", flush=True)


def exact_contrib_table(batches: dict, n_jets: int) -> None:
    spec = FeatureSpec.exact()
    print(f"\n## Exact (all constituents) on {n_jets} jets: FeatureSpec.exact() vs fastjet-contrib per batch\n")
    print("| jets | mean n | compute_features(exact) | fastjet-contrib (exact) |")
    print("|---|---|---|---|")
    for label, batch in batches.items():
        few = batch[:n_jets]
        ours = cpu_seconds(lambda: compute_features(few, spec), 1) / len(few)
        events = awkward_events(few)
        theirs = cpu_seconds(lambda: contrib_features(events, spec, events, events), 1) / len(few)
        print(f"| {label} | {few.n_constituents.mean():.0f} | {ours * 1e3:,.0f} ms/jet | {theirs * 1e3:,.0f} ms/jet |",
              flush=True)


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


# ----------------------------------------------------------------- truncation
def truncation_table(batch: JetBatch) -> None:
    from sklearn.metrics import roc_auc_score

    spec = FeatureSpec(tau_ratios=())
    exact, names = compute_features(batch, FeatureSpec.exact(tau_ratios=()))
    truncated, _ = compute_features(batch, spec)
    pt = np.sort(np.where(batch.mask, batch.pt, 0.0), axis=1)[:, ::-1].astype(np.float64)
    kept = {k: np.median(pt[:, :k].sum(axis=1) / pt.sum(axis=1)) for k in (spec.ecfg3_max_constituents, spec.ecf4_max_constituents)}
    n = batch.n_constituents
    print(f"\n## Truncation on {len(batch)} Pythia top-tagging jets (n constituents: median {np.median(n):.0f}, "
          f"90% {np.percentile(n, 90):.0f}, max {n.max()})\n")
    print(f"Median pt fraction kept: hardest {spec.ecfg3_max_constituents}: {kept[spec.ecfg3_max_constituents]:.3f}, "
          f"hardest {spec.ecf4_max_constituents}: {kept[spec.ecf4_max_constituents]:.3f}.\n")
    print("| feature | k | median truncated/exact | median abs rel change | 90% abs rel change | AUC top vs QCD exact -> truncated |")
    print("|---|---|---|---|---|---|")
    top = batch.labels == list(batch.class_names).index("top")
    for i, name in enumerate(names):
        if not re.fullmatch(r"[cumn][23]_b.*", name) or name.startswith("c2"):
            continue  # not truncated
        k = spec.ecf4_max_constituents if name[1] == "3" else spec.ecfg3_max_constituents
        x, r = truncated[:, i].astype(np.float64), exact[:, i].astype(np.float64)
        ok = r != 0
        ratio = x[ok] / r[ok]
        aucs = [max(a, 1 - a) for a in (roc_auc_score(top, r), roc_auc_score(top, x))]
        print(f"| {name} | {k} | {np.median(ratio):.3f} | {np.median(np.abs(ratio - 1)):.3f} "
              f"| {np.percentile(np.abs(ratio - 1), 90):.3f} | {aucs[0]:.3f} -> {aucs[1]:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jets", type=int, default=512, help="synthetic jets for the speed tables")
    parser.add_argument("--constituents", type=int, default=200)
    parser.add_argument("--pythia-jets", type=int, default=100, help="Pythia jets per class (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-jets", type=int, default=20, help="jets for the per-jet fastjet-contrib loop")
    parser.add_argument("--exact-jets", type=int, default=2, help="jets for the exact fastjet-contrib comparison")
    parser.add_argument("--memory-jets", type=int, default=10_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DegenerateJetWarning)

    synthetic = top_like_jets(args.n_jets, args.constituents)
    batches = {f"{args.constituents}-constituent top-like": synthetic}
    pythia = pythia_jets(args.pythia_jets) if args.pythia_jets else None
    if pythia is not None:
        tops = pythia.select(pythia.labels == list(pythia.class_names).index("top"))
        batches[f"Pythia top jets (mean n {tops.n_constituents.mean():.0f})"] = tops
    print(f"# jettf.features benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    throughput_table(batches, args.repeats)
    contrib_table(batches, args.loop_jets)
    exact_contrib_table(batches, args.exact_jets)
    if not args.skip_memory:
        memory_table(args.memory_jets, args.constituents)
    if pythia is not None:
        truncation_table(pythia)
    print(f"\nmax RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
