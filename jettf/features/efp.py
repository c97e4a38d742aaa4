"""Energy-flow polynomials (Komiske, Metodiev, Thaler, arXiv:1712.07124), batched over jets.

For a multigraph G with edges E,

    EFP_G = sum_{i_1..i_n} z_i1 .. z_in prod_{(k,l) in E} theta_{i_k i_l},

with energyflow's hadronic measure: z_i = pt_i / sum pt, theta_ij = Delta R_ij^beta
(rapidity-azimuth). The graphs, their einsum contraction strings and paths, and
the products that give disconnected graphs come from ``energyflow.EFPSet``;
the contractions run here with an extra jet index, each pairwise step as one
batched matrix product (:func:`_contract`), so a group of jets costs a few
BLAS calls per connected graph instead of a Python call per jet.

Names: ``efp_d{d}_{j}`` is the j-th graph (energyflow's order: connected, then
disconnected) among those with d edges; it does not depend on ``efp_dmax``.
The constant d = 0 graph is left out.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["efp_graph_names", "efp_columns"]


@functools.lru_cache(maxsize=8)
def _efp_set(dmax: int):
    import energyflow

    return energyflow.EFPSet(("d<=", dmax), ("d>", 0), measure="hadr", beta=1, normed=True, coords="ptyphim")


@functools.lru_cache(maxsize=8)
def efp_graph_names(dmax: int) -> tuple:
    """Names of the EFPs with 1 <= d <= dmax, in column order."""
    efps = _efp_set(dmax)
    degrees = efps.specs[:, efps.d_ind]
    seen = {}
    names = []
    for d in degrees:
        j = seen.get(d, 0)
        seen[d] = j + 1
        names.append(f"efp_d{d}_{j}")
    return tuple(names)


@functools.lru_cache(maxsize=8)
def _batched_einsums(dmax: int) -> tuple:
    """(einsum string with a leading jet index, path, edge weights, vertex count) per connected graph."""
    out = []
    for efp in _efp_set(dmax).efps:
        inputs = efp.einstr.split(",")
        batched = ",".join("J" + term for term in inputs) + "->J"  # energyflow uses lower case only
        out.append((batched, list(efp.einpath), tuple(efp.weights), efp.n))
    return tuple(out)


def efp_columns(theta: np.ndarray, z: np.ndarray, dmax: int, beta: float) -> np.ndarray:
    """EFPs ``[G, n_efp]`` float64 for a group of jets.

    Args:
        theta: ``[G, w, w]`` pairwise Delta R; z: ``[G, w]`` momentum fractions (0 for padding).
        dmax: largest number of edges; beta: angular exponent.
    """
    powers = {}
    connected = []
    for einstr, path, weights, n_vertices in _batched_einsums(dmax):
        for w in weights:
            if w not in powers:
                powers[w] = theta ** (beta * w)
        operands = [powers[w] for w in weights] + [z] * n_vertices
        connected.append(_contract(einstr, operands, path))
    connected = np.stack(connected, axis=1)
    return np.asarray(_efp_set(dmax).calc_disc(connected)).reshape(len(z), -1)


def _contract(einstr: str, operands: list, path: list) -> np.ndarray:
    """``np.einsum(einstr, *operands)`` following ``path`` (numpy's ``einsum_path`` format),
    with every pairwise step done by broadcasting or a batched ``np.matmul``."""
    inputs, output = einstr.split("->")
    terms = [(op, idx) for op, idx in zip(operands, inputs.split(","))]
    for step in path[1:]:
        picked = [terms[i] for i in step]
        terms = [t for i, t in enumerate(terms) if i not in step]
        keep = set(output).union(*(idx for _, idx in terms))
        a, ia = _sum_out(*picked[0], keep.union(*(idx for _, idx in picked[1:])))
        for k, (b, ib) in enumerate(picked[1:], start=2):
            a, ia = _pairwise(a, ia, b, ib, keep.union(*(idx for _, idx in picked[k:])))
        terms.append((a, ia))
    (result, idx), = terms
    return np.einsum(f"{idx}->{output}", result)


def _pairwise(a, ia, b, ib, keep):
    """Contract two operands; indices not in ``keep`` are summed."""
    a, ia = _sum_out(a, ia, set(ib) | keep)
    b, ib = _sum_out(b, ib, set(ia) | keep)
    shared = [c for c in ia if c in ib]
    batch = [c for c in shared if c in keep]
    summed = [c for c in shared if c not in keep]
    a_free = [c for c in ia if c not in ib]
    b_free = [c for c in ib if c not in ia]
    if not summed:  # outer or elementwise product: broadcasting
        out = batch + a_free + b_free
        return np.einsum(f"{ia},{ib}->{''.join(out)}", a, b), "".join(out)
    dims = {**dict(zip(ia, a.shape)), **dict(zip(ib, b.shape))}
    size = lambda idx: int(np.prod([dims[c] for c in idx], dtype=np.int64))  # noqa: E731
    lead = [dims[c] for c in batch]
    am = np.einsum(f"{ia}->{''.join(batch + a_free + summed)}", a).reshape(lead + [size(a_free), size(summed)])
    bm = np.einsum(f"{ib}->{''.join(batch + summed + b_free)}", b).reshape(lead + [size(summed), size(b_free)])
    out = np.matmul(am, bm).reshape(lead + [dims[c] for c in a_free + b_free])
    return out, "".join(batch + a_free + b_free)


def _sum_out(x, idx, needed):
    drop = [c for c in idx if c not in needed]
    if not drop:
        return x, idx
    rest = "".join(c for c in idx if c in needed)
    return np.einsum(f"{idx}->{rest}", x), rest
