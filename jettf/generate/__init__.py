"""Pythia 8 + FastJet generator of jet samples equivalent to the public datasets.

- :func:`generate_jets` returns a :class:`~jettf.jets.JetBatch` of ``n_jets`` jets per class.
- :func:`generate_sample` writes a sample in the public file layout (through :mod:`jettf.io`),
  in parallel over shards, resumable; ``python -m jettf.generate SAMPLE --n-jets N --out DIR``.

The physics of each sample (process, cuts, matching, and the differences from
the public samples) is in :mod:`jettf.generate.samples` and ``README.md`` here.
"""

from jettf.generate.production import generate_sample
from jettf.generate.pythia import generate_jets
from jettf.generate.samples import SAMPLES, get_card

__all__ = ["generate_jets", "generate_sample", "SAMPLES", "get_card"]
