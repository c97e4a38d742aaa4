"""Export a run for TensorFlow Serving: ``python -m jettf.export RUN_DIR [--out saved_models/NAME] [--version V]``.

The implementation lives in :mod:`jettf.serving.export` (the exporter) and
:mod:`jettf.serving.client` (request builders); this module is the command line.
"""

from __future__ import annotations

import sys

from jettf.serving.export import export_run, main

__all__ = ["export_run", "main"]

if __name__ == "__main__":
    sys.exit(main())
