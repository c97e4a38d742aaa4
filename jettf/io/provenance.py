"""Marks inside files written by ``jettf.generate``, so a generated file is never taken for a public one.

The generator's settings (sample, physics card fingerprint, seed, jets per
class...) are stored as JSON in the file itself, where the public loaders do
not look: an HDF5 attribute ``jettf_generated`` (the root group of JetNet
``.hdf5`` files, the ``table`` group of Top Tagging ``.h5`` files) and an extra
array ``jettf_generated`` (a 0-d string) in quark/gluon ``.npz`` archives, a key of the
schema metadata in CMS E2E ``.parquet`` files. A file copied alone is therefore still
recognised. Public files have no mark.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from jettf.io._common import FileFormatError, PathLike

__all__ = ["GENERATED_MARK", "generated_settings", "mark_text"]

#: Name of the attribute (HDF5) or array (npz) holding the generator settings as JSON.
GENERATED_MARK = "jettf_generated"


def mark_text(settings: dict) -> str:
    """The JSON stored in a generated file (sorted keys: the same settings give the same bytes)."""
    if not isinstance(settings, dict) or not settings:
        raise ValueError(f"generator settings must be a non-empty dict, got {settings!r}")
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def generated_settings(path: PathLike) -> Optional[dict]:
    """The generator settings stored in a file written by ``jettf.generate``; None for any other file.

    Reads only the mark (an HDF5 attribute, one small member of an ``.npz``, or parquet schema metadata).
    A file that cannot be opened gives None: the readers report what is wrong
    with it.
    """
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive:
                if f"{GENERATED_MARK}.npy" not in archive.namelist():
                    return None
                with archive.open(f"{GENERATED_MARK}.npy") as stream:
                    text = str(np.lib.format.read_array(stream, allow_pickle=False)[()])
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            metadata = pq.read_schema(path).metadata or {}
            if GENERATED_MARK.encode() not in metadata:
                return None
            text = metadata[GENERATED_MARK.encode()].decode()
        else:
            import h5py

            with h5py.File(path, "r") as f:
                holders = [f] + [f[k] for k in ("table",) if k in f]  # JetNet: root; Top Tagging: the table group
                values = [h.attrs[GENERATED_MARK] for h in holders if GENERATED_MARK in h.attrs]
            if not values:
                return None
            text = values[0].decode() if isinstance(values[0], bytes) else str(values[0])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # pyarrow's errors are OSError/ValueError too
        return None
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{path}: '{GENERATED_MARK}' is not JSON ({err}); expected the settings written by "
                              "jettf.generate") from None
    if not isinstance(settings, dict):
        raise FileFormatError(f"{path}: '{GENERATED_MARK}' holds {type(settings).__name__}; expected a JSON object "
                              "of generator settings")
    return settings
