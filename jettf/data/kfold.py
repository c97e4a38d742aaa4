"""K-fold cross-validation splits by TFDS split slicing, stratified by class, reproducible from a seed.

The builders write every split in stratified order (see
:mod:`jettf.data.builder_base`): any contiguous slice holds each class in its
overall proportion to within one jet. The training split is cut into
``k * blocks_per_fold`` contiguous blocks; a seeded permutation deals the
blocks to the folds. Each fold's validation part is the union of its blocks
and its training part the union of the others, written as TFDS split strings
(``train[0:5440]+train[21760:27200]+...``), so the folds are disjoint, cover
the split, are stratified to within ``blocks_per_fold`` jets per class, and
a different seed gives different folds.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

__all__ = ["Fold", "kfold_splits"]


@dataclasses.dataclass(frozen=True)
class Fold:
    """One fold: ``train`` and ``validation`` are TFDS split strings over the same split."""

    index: int
    k: int
    train: str
    validation: str
    n_train: int
    n_validation: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _ranges_to_split(split: str, ranges: Sequence[Tuple[int, int]]) -> str:
    merged: List[List[int]] = []
    for a, b in sorted(ranges):
        if merged and merged[-1][1] == a:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return "+".join(f"{split}[{a}:{b}]" for a, b in merged)


def kfold_splits(dataset, k: int = 5, seed: int = 0, *, split: str = "train", data_dir=None,
                 blocks_per_fold: int = 4) -> List[Fold]:
    """The ``k`` folds of ``split`` of a built dataset.

    Args:
        dataset: ``"NAME/CONFIG"``, a :class:`JetDatasetInfo`, or the number of
            examples of the split (an int).
        k: number of folds (000 uses 5).
        seed: deals blocks to folds; the same seed gives the same folds.
        blocks_per_fold: contiguous blocks per fold (more blocks: folds mix more of
            the split's range, stratification within ``blocks_per_fold`` jets).
    """
    if isinstance(dataset, (int, np.integer)):
        n = int(dataset)
    else:
        from jettf.data.info import JetDatasetInfo, load_info

        info = dataset if isinstance(dataset, JetDatasetInfo) else load_info(dataset, data_dir)
        n = info.num_examples(split)
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    if n < k:
        raise ValueError(f"split {split!r} has {n} examples, fewer than k={k} folds")
    per_fold = max(1, min(int(blocks_per_fold), n // k))
    n_blocks = k * per_fold
    edges = (np.arange(n_blocks + 1) * n) // n_blocks
    order = np.random.default_rng(seed).permutation(n_blocks)
    folds = []
    for f in range(k):
        mine = set(order[f * per_fold: (f + 1) * per_fold].tolist())
        val = [(int(edges[b]), int(edges[b + 1])) for b in range(n_blocks) if b in mine]
        train = [(int(edges[b]), int(edges[b + 1])) for b in range(n_blocks) if b not in mine]
        n_val = sum(b - a for a, b in val)
        folds.append(Fold(f, k, _ranges_to_split(split, train), _ranges_to_split(split, val), n - n_val, n_val))
    return folds

