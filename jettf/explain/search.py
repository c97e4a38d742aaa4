"""Black-box guided search for high-level observables that mimic a network (004 sections 3.8 and 4.5;
Faucett, Thaler, Whiteson, arXiv:2010.11998).

Start from a set of high-level (HL) features and a small network trained on them (HLN_0). At each step

1. find the (signal, background) pairs that the guiding network and HLN_n order differently (the disagreement
   set X_n, :func:`jettf.explain.ado.disagreement_pairs`, sampled to ``n_pairs`` pairs with a seed);
2. score every remaining candidate observable by its ADO with the guiding network on X_n and pick the best;
3. retrain the small network on the features plus that observable (HLN_{n+1}) and record its AUC and its ADO
   with the guiding network over all pairs;

until AUC and ADO plateau (``stop``: gains below ``auc_tol`` / ``ado_tol``) or ``max_steps``. The result is a
table of the chosen observables with AUC and ADO after each step, as 004's Tables 3.2 and 4.1.

Candidates are energy-flow polynomials (:func:`efp_observables`) from a configurable grid of degree, kappa
and beta, computed by energyflow's ``EFPSet`` with the hadronic measure ``z_i = (pt_i / sum_j pt_j)^kappa``,
``theta_ij = (Delta y_ij^2 + Delta phi_ij^2)^(beta / 2)`` (004 eqs. 3.7-3.8, 4.3-4.4), on the constituents
with y = pseudorapidity (massless approximation) relative to the jet axis.

Choices (documented because 004 leaves them open):

* The small network is 004's (section 3.8.2): three hidden layers of 50 ReLU units with dropout 0.25 between
  them, Glorot-normal initial weights, Adam with learning rate 1e-3, batch size 128. Its output is a two-class
  softmax (the project's convention; equivalent to 004's single logistic unit). Inputs are standardized by a
  ``keras.layers.Normalization`` layer; with ``log_inputs`` (default) strictly positive columns are first
  replaced by their natural log, since EFPs span decades (004 plots log10 of them). Training stops early on a
  validation fraction of the training jets (best weights restored).
* Jets are split once (stratified, seeded) into a training part for the small networks and an evaluation part
  on which the disagreement set, the candidates' ADO, and the reported AUC and ADO are computed. The
  selection and the reported numbers use the same evaluation jets (004 names no separate selection set); with
  few jets the reported gains are therefore slightly optimistic.
* Orientation: by default (``orientation="raw"``, 004 and Faucett et al.) a candidate's raw value is compared
  with the network on X_n. ``orientation="global"`` first flips the candidates whose ADO with the network over
  all evaluation pairs (estimated on ``n_pairs`` random pairs) is below 1/2 (observables that decrease towards
  signal), then scores them on X_n with that fixed sign; the table marks flipped observables with a minus.
  Choosing the sign on X_n itself (max(ADO, 1 - ADO) there) is deliberately not offered: on X_n the HL network
  orders every pair opposite to the network, so the *negation* of any observable correlated with the current
  features (e.g. -sum z z theta^3 next to the jet mass) agrees with the network there without adding
  information (seen on generated top jets: it was picked and lowered the AUC).
* With no start features, HLN_0 is a constant (AUC = ADO = 1/2) and X_0 is a uniform sample of all pairs.
* Candidate columns that are constant over the jets (e.g. the one-node graph at kappa = 1) are dropped, and
  graphs without edges are kept for one beta only (they do not depend on beta).

TensorFlow or JAX: the small network is plain Keras 3. Its initial weights, dropout masks and shuffles derive
from ``seed`` (no global seed is set), so the same seed gives the same table on the same machine and backend.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from jettf import metrics

from .ado import ado, disagreement_pairs, random_pairs

__all__ = [
    "Observables",
    "EFPGrid",
    "efp_observables",
    "jet_observables",
    "HLNetworkConfig",
    "train_hl_network",
    "guided_search",
    "SearchResult",
]


# ============================================================================ observables


def _fmt(x: float) -> str:
    """Shortest decimal, '.' -> 'p', '-' -> 'm' (0.5 -> '0p5', -1 -> 'm1'), as in feature names."""
    text = f"{float(x):g}"
    return text.replace("-", "m").replace(".", "p")


@dataclasses.dataclass(frozen=True, eq=False)
class Observables:
    """Named observables: ``values`` float64 ``[N, K]``, ``names`` (K), ``info`` (K dicts describing each)."""

    values: np.ndarray
    names: tuple
    info: tuple

    def __post_init__(self):
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"Observables.values: expected [N, K], got shape {values.shape}")
        names, info = tuple(self.names), tuple(self.info)
        if len(names) != values.shape[1] or len(info) != values.shape[1]:
            raise ValueError(f"Observables: {values.shape[1]} columns but {len(names)} names and {len(info)} infos")
        if len(set(names)) != len(names):
            raise ValueError("Observables.names: names must be unique")
        if not np.all(np.isfinite(values)):
            bad = [n for n, ok in zip(names, np.isfinite(values).all(axis=0)) if not ok]
            raise ValueError(f"Observables.values: nan or inf in column(s) {bad[:5]}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "info", info)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_jets(self) -> int:
        return self.values.shape[0]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no observable {name!r}; have {list(self.names)[:8]}...") from None

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """``[N, len(names)]`` values of the named observables."""
        return self.values[:, [self.index(n) for n in names]]

    def select_jets(self, index) -> "Observables":
        return Observables(self.values[index], self.names, self.info)

    @staticmethod
    def concatenate(parts: Sequence["Observables"]) -> "Observables":
        parts = [p for p in parts if p is not None]
        if not parts:
            raise ValueError("Observables.concatenate: nothing to join")
        return Observables(
            np.concatenate([p.values for p in parts], axis=1),
            sum((p.names for p in parts), ()),
            sum((p.info for p in parts), ()),
        )

    @classmethod
    def from_dict(cls, columns: Mapping[str, Any]) -> "Observables":
        """From ``{name: values [N]}`` (e.g. ``{"jet_mass": batch.jet_mass}``)."""
        names = list(columns)
        values = np.stack([np.asarray(columns[n], dtype=np.float64).reshape(-1) for n in names], axis=1)
        return cls(values, tuple(names), tuple({"kind": "feature", "name": n, "formula": n} for n in names))


@dataclasses.dataclass(frozen=True)
class EFPGrid:
    """The candidate set: every EFP with ``1 <= d <= dmax`` edges (and ``n <= nmax`` nodes) at each kappa and beta.

    ``kappas`` / ``betas`` as in 004 (IRC-safe: kappa = 1; 004 section 3.8.1 scans kappa in {-1, 0, 1, 2} and
    beta in {1/2, 1, 2}). ``prime_only`` keeps connected graphs only. ``include_d0`` adds the one-node graph
    ``sum_a z_a^kappa`` (pT^D for kappa = 2; constant, hence dropped, at kappa = 1).
    """

    dmax: int = 3
    kappas: tuple = (1.0,)
    betas: tuple = (1.0,)
    nmax: Optional[int] = None
    prime_only: bool = False
    include_d0: bool = True

    def __post_init__(self):
        if isinstance(self.dmax, bool) or not isinstance(self.dmax, int) or not 1 <= self.dmax <= 10:
            raise ValueError(f"EFPGrid.dmax: expected an int in 1..10 (energyflow ships d <= 10), got {self.dmax!r}")
        kappas = tuple(float(k) for k in np.atleast_1d(self.kappas))
        betas = tuple(float(b) for b in np.atleast_1d(self.betas))
        if not kappas or not betas:
            raise ValueError("EFPGrid: kappas and betas must not be empty")
        if any(b <= 0 for b in betas):
            raise ValueError(f"EFPGrid.betas: expected beta > 0, got {betas}")
        object.__setattr__(self, "kappas", kappas)
        object.__setattr__(self, "betas", betas)


def efp_formula(edges, n_nodes: int, kappa: float, beta: float) -> str:
    """A readable formula, e.g. ``sum_{a,b,c} z_a z_b z_c theta_ab theta_bc theta_ca`` (theta = Delta R^beta)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    label = (lambda i: letters[i]) if n_nodes <= len(letters) else (lambda i: f"i{i}")
    nodes = [label(i) for i in range(n_nodes)]
    power = "" if kappa == 1 else f"^{kappa:g}"
    z = " ".join(f"z_{v}{power}" for v in nodes)
    multiplicity: dict = {}
    for a, b in edges:
        key = (min(a, b), max(a, b))
        multiplicity[key] = multiplicity.get(key, 0) + 1
    thetas = []
    for (a, b), k in sorted(multiplicity.items()):
        exponent = k * beta
        thetas.append(f"theta_{label(a)}{label(b)}" + ("" if exponent == 1 else f"^{exponent:g}"))
    return f"sum_{{{','.join(nodes)}}} " + " ".join([z] + thetas)


def _events(batch) -> list:
    """Per-jet ``[M_j, 3]`` (pt, eta - jet_eta, wrapped phi - jet_phi) arrays of the real constituents."""
    counts = batch.n_constituents
    if np.any(counts == 0):
        raise ValueError(f"batch: {int(np.sum(counts == 0))} jet(s) have no constituents; EFPs need at least one")
    etarel, phirel, _ = batch.relative()
    particles = np.stack([batch.pt, etarel, phirel], axis=-1).astype(np.float64)[batch.mask]
    return np.split(particles, np.cumsum(counts)[:-1])


def efp_observables(batch, grid: EFPGrid = EFPGrid(), *, n_jobs: int = 1) -> Observables:
    """EFP candidates of every jet of a :class:`jettf.jets.JetBatch` over ``grid``.

    Names: ``efp_d{d}_{j}_kappa{kappa}_beta{beta}`` (``efp_d0_0_kappa{kappa}`` for the one-node graph), with j
    the graph's position among those with d edges in energyflow's order (connected first), as in
    :mod:`jettf.features`; ``info`` holds n, d, j, energyflow's k, kappa, beta, the edge list, whether the graph
    is connected, and :func:`efp_formula`. ``n_jobs`` is
    energyflow's worker-process count (1 = in this process).
    """
    import energyflow

    events = _events(batch)
    selection = [("d<=", grid.dmax)]
    if grid.nmax is not None:
        selection.append(("n<=", int(grid.nmax)))
    if grid.prime_only:
        selection.append(("p==", 1))
    # j = position among the graphs with d edges in energyflow's order (connected first), independent of
    # dmax and of the nmax / prime_only filters, so names are stable.
    full = energyflow.EFPSet(("d<=", grid.dmax), measure="hadr")
    per_degree: dict = {}
    graph_index = {}
    for spec, edges in zip(full.specs, full.graphs()):
        d = int(spec[full.d_ind])
        graph_index[(d, tuple(tuple(int(v) for v in e) for e in edges))] = per_degree.get(d, 0)
        per_degree[d] = per_degree.get(d, 0) + 1
    blocks, names, info = [], [], []
    for kappa in grid.kappas:
        for bi, beta in enumerate(grid.betas):
            efps = energyflow.EFPSet(*selection, measure="hadr", beta=beta, kappa=kappa, normed=True,
                                     coords="ptyphim", kappa_normed_behavior="new")
            specs, graphs = efps.specs, efps.graphs()
            keep = []
            for col, (spec, edges) in enumerate(zip(specs, graphs)):
                n, d, k, p = (int(spec[efps.n_ind]), int(spec[efps.d_ind]), int(spec[efps.k_ind]),
                              int(spec[efps.p_ind]))
                if d == 0 and (not grid.include_d0 or bi > 0):
                    continue
                edges = [tuple(int(v) for v in e) for e in edges]
                j = graph_index[(d, tuple(edges))]
                name = (f"efp_d0_{j}_kappa{_fmt(kappa)}" if d == 0
                        else f"efp_d{d}_{j}_kappa{_fmt(kappa)}_beta{_fmt(beta)}")
                keep.append(col)
                names.append(name)
                info.append({
                    "kind": "efp", "name": name, "n": n, "d": d, "j": j, "k": k, "kappa": kappa,
                    "beta": None if d == 0 else beta, "edges": edges, "connected": p == 1,
                    "formula": efp_formula(edges, n, kappa, beta),
                })
            if keep:
                values = np.asarray(efps.batch_compute(events, n_jobs=n_jobs), dtype=np.float64)
                blocks.append(values[:, keep])
    values = np.concatenate(blocks, axis=1)
    varying = np.ptp(values, axis=0) > 1e-12 * np.maximum(np.abs(values).max(axis=0), 1e-300)
    keep = np.flatnonzero(varying)
    return Observables(values[:, keep], tuple(names[i] for i in keep), tuple(info[i] for i in keep))


def jet_observables(batch, names: Sequence[str] = ("jet_mass", "jet_pt")) -> Observables:
    """Jet-level start features from a JetBatch: any of ``jet_mass``, ``jet_pt`` (GeV), ``jet_eta``,
    ``n_constituents``, ``sum_pt`` (scalar sum of constituent pt, 004 section 4.5.1's overall scale)."""
    available = {
        "jet_mass": lambda: batch.jet_mass,
        "jet_pt": lambda: batch.jet_pt,
        "jet_eta": lambda: batch.jet_eta,
        "n_constituents": lambda: batch.n_constituents,
        "sum_pt": lambda: np.sum(np.where(batch.mask, batch.pt, 0), axis=1),
    }
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"jet_observables: unknown name(s) {unknown}; expected some of {list(available)}")
    return Observables.from_dict({n: available[n]() for n in names})


# ============================================================================ the small network


@dataclasses.dataclass(frozen=True)
class HLNetworkConfig:
    """The small HL network of 004 section 3.8.2 and how it is trained.

    Architecture, dropout, learning rate and batch size are 004's. ``epochs`` / ``patience`` (early stopping on
    the validation loss) are ours: with a few hundred jets an epoch is only a few updates, so small samples need
    many epochs. ``log_inputs``: log of strictly positive columns before standardization.
    """

    hidden: tuple = (50, 50, 50)
    dropout: float = 0.25
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    patience: int = 20
    validation_fraction: float = 0.25
    log_inputs: bool = True


def _log_columns(x_train: np.ndarray) -> np.ndarray:
    return np.all(x_train > 0, axis=0)


def _transform(x: np.ndarray, log_mask: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    if log_mask.any():
        x[:, log_mask] = np.log(np.clip(x[:, log_mask], 1e-300, None))
    return x.astype(np.float32)


class _HLNetwork:
    """A trained small network with its input transform; ``score(x)`` = P(signal)."""

    def __init__(self, model, log_mask):
        self.model = model
        self.log_mask = log_mask

    def score(self, x: np.ndarray) -> np.ndarray:
        x = _transform(x, self.log_mask)
        probs = [np.asarray(self.model.predict_on_batch(x[i:i + 8192])) for i in range(0, len(x), 8192)]
        return np.concatenate(probs).astype(np.float64)[:, 1]


def train_hl_network(x, y, config: HLNetworkConfig = HLNetworkConfig(), seed: int = 0) -> _HLNetwork:
    """Train 004's small network on features ``x`` ``[N, F]`` and binary labels ``y``; returns an object with
    ``.score(x) -> [N]`` (signal probability) and ``.model`` (the Keras model).

    A plain loop of ``train_on_batch`` over seeded shuffles (Keras' ``fit`` costs more per epoch than these
    tiny models take to train), with early stopping on the validation loss and the best weights restored.
    Initial weights, dropout masks and shuffles all derive from ``seed``; no global seed is touched.
    """
    import keras

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] == 0:
        raise ValueError(f"train_hl_network: expected x [N, F>0] and y [N], got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for c in (0, 1):  # stratified validation split
        idx = np.flatnonzero(y == c)
        val[rng.choice(idx, int(round(config.validation_fraction * idx.size)), replace=False)] = True
    log_mask = _log_columns(x[~val]) if config.log_inputs else np.zeros(x.shape[1], dtype=bool)
    xt = _transform(x, log_mask)
    x_fit, y_fit, x_val, y_val = xt[~val], y[~val], xt[val], y[val]

    inputs = keras.Input((x.shape[1],), name="features")
    norm = keras.layers.Normalization(name="standardize")
    norm.adapt(x_fit)
    h = norm(inputs)
    for i, units in enumerate(config.hidden):
        if i:
            h = keras.layers.Dropout(config.dropout, seed=seed + i, name=f"dropout_{i}")(h)
        h = keras.layers.Dense(units, activation="relu", kernel_initializer=keras.initializers.GlorotNormal(seed + i),
                               name=f"hidden_{i + 1}")(h)
    out = keras.layers.Dense(2, activation="softmax", name="probabilities",
                             kernel_initializer=keras.initializers.GlorotNormal(seed + 100))(h)
    model = keras.Model(inputs, out, name="hl_network")
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy")

    def val_loss() -> float:
        p = np.asarray(model.predict_on_batch(x_val), dtype=np.float64)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y_val)), y_val], 1e-7, None))))

    best, best_weights, waited = np.inf, None, 0
    for _ in range(config.epochs):
        order = rng.permutation(len(y_fit))
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            model.train_on_batch(x_fit[batch], y_fit[batch])
        if not len(y_val):
            continue
        loss = val_loss()
        if loss < best:
            best, best_weights, waited = loss, model.get_weights(), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return _HLNetwork(model, log_mask)


# ============================================================================ the search


@dataclasses.dataclass
class SearchResult:
    """Rows of the guided search (one per step; step 0 is the start set) and a summary.

    Each row: ``step``, ``added`` (observable name, or ``None`` at step 0), ``formula``, ``kappa``, ``beta``,
    ``sign`` (+1, or -1 where ``orientation="global"`` flipped the observable), ``ado_disagreement`` (the candidate's ADO with
    the network on the disagreement set: the selection criterion), ``n_disagreement_pairs``,
    ``disagreement_fraction`` (of all pairs, before adding it), ``auc`` (HLN after adding it, evaluation jets),
    ``ado`` (HLN vs network over all evaluation pairs), ``delta_auc``, ``delta_ado``, ``kept`` (False for the
    step that plateaued and stopped the search), ``features`` (HLN inputs).
    """

    rows: list
    selected: list
    start_features: list
    network_auc: float
    stop_reason: str
    config: dict

    def table(self) -> str:
        """A markdown table in the form of 004's Tables 3.2 / 4.1 (method, AUC, ADO[network])."""
        lines = [
            "| step | added observable | (kappa, beta) | formula | ADO on X_n | AUC | ADO[network] | dAUC | dADO "
            "| kept |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            if r["step"] == 0:
                start = ", ".join(self.start_features) or "(none)"
                lines.append(f"| 0 | start: {start} | | | | {r['auc']:.4f} | {r['ado']:.4f} | | | yes |")
                continue
            beta = "-" if r["beta"] is None else format(r["beta"], "g")
            kb = f"({r['kappa']:g}, {beta})" if r["kappa"] is not None else ""
            sign = "" if r["sign"] > 0 else "-"
            lines.append(
                f"| {r['step']} | {sign}{r['added']} | {kb} | `{r['formula']}` | {r['ado_disagreement']:.4f} "
                f"| {r['auc']:.4f} | {r['ado']:.4f} | {r['delta_auc']:+.4f} | {r['delta_ado']:+.4f} "
                f"| {'yes' if r['kept'] else 'no'} |"
            )
        lines.append(f"| | network (guide) | | | | {self.network_auc:.4f} | 1 | | | |")
        return "\n".join(lines)

    def summary(self) -> str:
        kept = [r for r in self.rows if r["step"] > 0 and r["kept"]]
        first, last = self.rows[0], (kept[-1] if kept else self.rows[0])
        fell = [r["step"] for r in kept if not r["delta_auc"] > 0]
        trend = ("AUC rose at every kept step" if not fell else
                 f"AUC did not rise at kept step(s) {', '.join(map(str, fell))} (kept for their ADO gain)")
        return (
            f"{len(kept)} observable(s) chosen; AUC {first['auc']:.4f} -> {last['auc']:.4f} "
            f"(network {self.network_auc:.4f}), ADO[network] {first['ado']:.4f} -> {last['ado']:.4f}; "
            f"{trend}; stopped: {self.stop_reason}."
        )

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_json_default))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return repr(value)


def _split(y: np.ndarray, eval_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    is_eval = np.zeros(len(y), dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        is_eval[rng.choice(idx, int(round(eval_fraction * idx.size)), replace=False)] = True
    return np.flatnonzero(~is_eval), np.flatnonzero(is_eval)


def _candidate_ado(values: np.ndarray, guide: np.ndarray, pairs: np.ndarray, chunk: int = 64) -> np.ndarray:
    """ADO of each candidate column with the guide over ``pairs``, vectorized: ``[K]``."""
    s_guide = np.sign(guide[pairs[:, 0]] - guide[pairs[:, 1]])
    out = np.empty(values.shape[1])
    for start in range(0, values.shape[1], chunk):
        v = values[:, start:start + chunk]
        s = np.sign(v[pairs[:, 0]] - v[pairs[:, 1]])
        out[start:start + chunk] = 0.5 * (1.0 + (s * s_guide[:, None]).mean(axis=0))
    return out


_STOP_RULES = ("both", "either", "auc", "ado")


def _plateaued(delta_auc: float, delta_ado: float, stop: str, auc_tol: float, ado_tol: float) -> bool:
    flat_auc, flat_ado = delta_auc < auc_tol, delta_ado < ado_tol
    return {"both": flat_auc and flat_ado, "either": flat_auc or flat_ado, "auc": flat_auc, "ado": flat_ado}[stop]


def guided_search(
    network_scores,
    labels,
    candidates: Observables,
    start: Optional[Observables] = None,
    *,
    max_steps: int = 5,
    auc_tol: float = 1e-3,
    ado_tol: float = 1e-3,
    stop: str = "both",
    n_pairs: int = 100_000,
    eval_fraction: float = 0.5,
    orientation: str = "raw",
    network: HLNetworkConfig = HLNetworkConfig(),
    seed: int = 0,
    verbose: bool = False,
) -> SearchResult:
    """Greedy guided search over ``candidates`` (module docstring); returns a :class:`SearchResult`.

    ``network_scores`` ``[N]``: the guiding network's signal score per jet (ideally on jets it was not trained
    on); ``labels`` ``[N]``: 1 = signal, 0 = background; ``candidates`` and ``start`` (start features, or
    ``None`` for none): :class:`Observables` of the same N jets. ``stop``: which plateau ends the search:
    ``"both"`` (default: AUC gain < ``auc_tol`` and ADO gain < ``ado_tol``), ``"either"`` (004 section 3.8.2),
    ``"auc"`` or ``"ado"`` (004 section 4.5.1). The step that plateaus is reported with ``kept=False`` and
    not added. ``orientation``: ``"raw"`` or ``"global"`` (module docstring). ``n_pairs``: size of the sampled
    disagreement set. ``network``: the small network and its training (:class:`HLNetworkConfig`).
    """
    guide = np.asarray(network_scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    n = guide.size
    if not np.all(np.isfinite(guide)):
        raise ValueError("guided_search: network_scores contain nan or inf")
    if y.size != n or candidates.n_jets != n or (start is not None and start.n_jets != n):
        raise ValueError(
            f"guided_search: network_scores ({n}), labels ({y.size}), candidates ({candidates.n_jets})"
            + (f", start ({start.n_jets})" if start is not None else "") + " must describe the same jets"
        )
    if stop not in _STOP_RULES:
        raise ValueError(f"guided_search: stop={stop!r}; expected one of {_STOP_RULES}")
    if orientation not in ("raw", "global"):
        raise ValueError(f"guided_search: orientation={orientation!r}; expected 'raw' or 'global'")
    if not 0 < eval_fraction < 1:
        raise ValueError(f"guided_search: eval_fraction={eval_fraction}; expected a fraction in (0, 1)")
    if start is not None:
        overlap = set(start.names) & set(candidates.names)
        if overlap:
            raise ValueError(f"guided_search: start features {sorted(overlap)} are also candidates")
    pool = Observables.concatenate([start, candidates])
    train, held = _split(y, eval_fraction, seed)
    y_eval, guide_eval = y[held], guide[held]
    network_auc = metrics.roc_auc(y_eval, guide_eval)

    def fit(features: list, step: int) -> np.ndarray:
        model = train_hl_network(pool.columns(features)[train], y[train], network, seed=seed + 1000 * step)
        return model.score(pool.columns(features)[held])

    features = list(start.names) if start is not None else []
    if features:
        g_eval = fit(features, 0)
        auc_now, ado_now = metrics.roc_auc(y_eval, g_eval), ado(g_eval, guide_eval, y_eval)
    else:
        g_eval = np.zeros(held.size)
        auc_now, ado_now = 0.5, 0.5
    rows = [dict(step=0, added=None, formula=None, kappa=None, beta=None, sign=1, ado_disagreement=None,
                 n_disagreement_pairs=0, disagreement_fraction=None, auc=auc_now, ado=ado_now,
                 delta_auc=None, delta_ado=None, kept=True, features=list(features))]
    if verbose:
        print(f"[guided_search] step 0: {features or '(none)'}: AUC {auc_now:.4f}, ADO {ado_now:.4f}",
              file=sys.stderr)
    remaining = [c for c in candidates.names]
    if orientation == "global":  # sign of each candidate from its ADO with the network over (sampled) all pairs
        flip = _candidate_ado(candidates.values[held], guide_eval, random_pairs(y_eval, n_pairs, seed=seed)) < 0.5
    else:
        flip = np.zeros(len(candidates), dtype=bool)

    def remaining_index():
        return [candidates.index(c) for c in remaining]

    stop_reason = f"max_steps={max_steps} reached"
    for step in range(1, max_steps + 1):
        if not remaining:
            stop_reason = "no candidates left"
            break
        if features:
            dis = disagreement_pairs(g_eval, guide_eval, y_eval, n_pairs, seed=seed + step)
            pairs, fraction = dis.pairs, dis.fraction
        else:
            pairs, fraction = random_pairs(y_eval, n_pairs, seed=seed + step), 1.0
        if len(pairs) == 0:
            stop_reason = "the HL network and the network order every pair alike (empty disagreement set)"
            break
        scores = _candidate_ado(pool.columns(remaining)[held], guide_eval, pairs)
        oriented = scores if orientation == "raw" else np.where(flip[remaining_index()], 1.0 - scores, scores)
        best = int(np.argmax(oriented))
        name = remaining[best]
        info = pool.info[pool.index(name)]
        g_new = fit(features + [name], step)
        auc_new, ado_new = metrics.roc_auc(y_eval, g_new), ado(g_new, guide_eval, y_eval)
        d_auc, d_ado = auc_new - auc_now, ado_new - ado_now
        flat = _plateaued(d_auc, d_ado, stop, auc_tol, ado_tol)
        rows.append(dict(
            step=step, added=name, formula=info.get("formula"), kappa=info.get("kappa"), beta=info.get("beta"),
            sign=-1 if orientation == "global" and flip[candidates.index(name)] else 1,
            ado_disagreement=float(oriented[best]),
            n_disagreement_pairs=int(len(pairs)), disagreement_fraction=float(fraction), auc=auc_new, ado=ado_new,
            delta_auc=d_auc, delta_ado=d_ado, kept=not flat, features=features + [name],
        ))
        if verbose:
            print(f"[guided_search] step {step}: +{name} (ADO on X_n {oriented[best]:.4f}): AUC {auc_new:.4f} "
                  f"({d_auc:+.4f}), ADO {ado_new:.4f} ({d_ado:+.4f}){'' if not flat else ' -> plateau'}",
                  file=sys.stderr)
        if flat:
            stop_reason = (f"plateau at step {step} (dAUC {d_auc:+.4f} vs tol {auc_tol:g}, "
                           f"dADO {d_ado:+.4f} vs tol {ado_tol:g}, rule {stop!r})")
            break
        features.append(name)
        remaining.remove(name)
        g_eval, auc_now, ado_now = g_new, auc_new, ado_new
    config = dict(max_steps=max_steps, auc_tol=auc_tol, ado_tol=ado_tol, stop=stop, n_pairs=n_pairs,
                  eval_fraction=eval_fraction, orientation=orientation, seed=seed, network=dataclasses.asdict(network),
                  n_train=int(train.size), n_eval=int(held.size), n_candidates=len(candidates))
    selected = [r["added"] for r in rows[1:] if r["kept"]]
    start_names = list(start.names) if start is not None else []
    return SearchResult(rows, selected, start_names, network_auc, stop_reason, config)
