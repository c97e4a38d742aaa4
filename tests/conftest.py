"""Session fixtures shared by the test suite."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest


def _generator_fingerprint() -> str:
    """Hash of the generator's code: jets cached on disk are reused only while it is unchanged."""
    root = Path(__file__).resolve().parents[1] / "jettf" / "generate"
    digest = hashlib.sha256()
    for name in ("pythia.py", "samples.py"):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


def _first_per_class(batch, n_jets: int):
    """The first ``n_jets`` jets of each class, trimmed to the widest jet, as generate_jets(n_jets) returns them.

    generate_jets is prefix-stable: with the same seed, the jets for n are the
    first n of each class for any larger n.
    """
    _, first = np.unique(batch.labels, return_index=True)
    order = batch.labels[np.sort(first)]  # classes in the order generated
    keep = np.concatenate([np.flatnonzero(batch.labels == label)[:n_jets] for label in order])
    subset = batch.select(keep)
    return subset.pad_to(int(subset.n_constituents.max(initial=0)))


@pytest.fixture(scope="session")
def pythia_jets(request):
    """``pythia_jets(sample, n_jets=20, seed=1, classes=None) -> JetBatch`` of real Pythia jets.

    ``n_jets`` per class, from :func:`jettf.generate.generate_jets`. Results are
    kept per session in memory and in pytest's cache directory (``.pytest_cache``,
    while the generator code is unchanged); a request for fewer jets than a kept
    batch is answered from it. Treat the returned batch as read-only.
    """
    from jettf.generate import generate_jets
    from jettf.generate.pythia import load_batch, save_batch

    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    folder = Path(cache.mkdir("jettf_pythia_jets")) if cache is not None else None
    fingerprint = _generator_fingerprint()
    memory = {}  # (sample, seed, classes) -> (n_jets, batch)

    def get(sample: str, n_jets: int = 20, seed: int = 1, classes=None):
        classes = None if classes is None else tuple(classes)
        key = (sample, seed, classes)
        if key in memory and memory[key][0] >= n_jets:
            have, batch = memory[key]
            return batch if have == n_jets else _first_per_class(batch, n_jets)
        stem = f"{sample}_s{seed}_{'-'.join(classes or ('all',))}_{fingerprint}"
        on_disk = {} if folder is None else {
            int(m.group(1)): p for p in folder.glob(f"{stem}_n*.npz") if (m := re.search(r"_n(\d+)\.npz$", p.name))
        }
        larger = [n for n in on_disk if n >= n_jets]
        if larger:
            have = min(larger)
            batch, _ = load_batch(on_disk[have])
        else:
            have, batch = n_jets, generate_jets(sample, n_jets, seed, classes=classes)
            if folder is not None:
                save_batch(folder / f"{stem}_n{n_jets}.npz", batch)
        memory[key] = (have, batch)
        return batch if have == n_jets else _first_per_class(batch, n_jets)

    return get
