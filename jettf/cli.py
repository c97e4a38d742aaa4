"""What every ``python -m jettf.*`` command shares: a quiet start, SIGTERM like Ctrl-C, one-line errors.

* TensorFlow's C++ start-up lines (``cuInit`` on a machine without a GPU, oneDNN and CPU-feature
  notes, absl's preamble) are informational; they are filtered out while TensorFlow loads (any
  other line it prints still shows).
* ``kill`` (SIGTERM) stops a command as Ctrl-C does: finished work is kept, no half-written file.
* A user error (a bad setting, a missing file or dataset) prints one line, ``prog: error: ...``,
  and exits with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Callable, Optional, Sequence

__all__ = ["quiet_tensorflow", "run_command", "USER_ERRORS"]

#: Exceptions that mean "the user asked for something that cannot be done", reported in one line.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError, RuntimeError)


#: Lines TensorFlow's C++ runtime prints at import and first device query on a CPU-only machine (absl
#: writes them before any log level applies, so TF_CPP_MIN_LOG_LEVEL cannot silence them).
_START_UP_NOISE = (
    "All log messages before absl::InitializeLog",
    "oneDNN custom operations are on",
    "cudart_stub.cc",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
    "failed call to cuInit",
    "Could not find cuda drivers",
    "Unable to register cu",
    "computation_placer.cc",
)


@contextlib.contextmanager
def _filtered_stderr(noise: Sequence[str]):
    """Capture file descriptor 2 (C++ writes too); afterwards print every captured line not in ``noise``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip() and not any(pattern in line for pattern in noise):
                    print(line, file=sys.stderr)


def quiet_tensorflow() -> None:
    """Import TensorFlow and probe its devices with the start-up notes of a CPU-only machine filtered out;
    anything else it prints (a real warning or error) still shows."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    with _filtered_stderr(_START_UP_NOISE):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def run_command(prog: str, main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``main(argv)`` as the command ``prog``: quiet start, SIGTERM as Ctrl-C, one-line errors, ``--debug``."""
    from jettf.utils import sigterm_as_keyboard_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not {"-h", "--help"} & set(argv):  # help answers at once, without loading TensorFlow
        quiet_tensorflow()
    sigterm_as_keyboard_interrupt()
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept (run the same command again to resume)", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if debug:
            raise
        message = str(err).strip().strip('"') or type(err).__name__
        print(f"{prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 2
