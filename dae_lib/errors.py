"""The project's own errors: problems with what a user gave us, which the user can fix.

The command line prints these as one line (``error: <message>``) with exit status 2; every other
exception is a bug and keeps its traceback. Each message names the file, folder or setting at fault.
Each class is also a subclass of the built-in exception it replaces, so ``except ValueError`` in
older code still catches a :class:`ConfigError`.
"""
from __future__ import annotations

import sys
import unicodedata


class InputError(Exception):
    """Base class: bad input, reported in one line by the command line."""


class ConfigError(InputError, ValueError):
    """A setting, profile or variant that does not exist or does not fit the others."""


class DataError(InputError, ValueError):
    """A problem with the input data; the message names the file and the problem."""


class RunDirError(InputError, RuntimeError):
    """The output folder holds something else than this run: it is left as it is."""


class WeightsError(InputError, RuntimeError):
    """Weights that are missing, unreadable, or made for another architecture or variant."""


class PublishError(InputError, RuntimeError):
    """Committed outputs (results/, figures/) asked for from code that is not committed."""


class DeviceError(InputError, RuntimeError):
    """A device or precision that this machine does not have."""


class NotReady(InputError, RuntimeError):
    """A notebook opened before what it needs exists (trained runs): the message says which notebook
    or command to run first. Jupyter shows it as that one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is shown
        return [f"{type(self).__name__}: {self}"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the message says how many epochs are saved and how to resume. Still
    a KeyboardInterrupt, so code that stops on one still stops."""


def shown(text) -> str:
    """``text`` safe for one line of a terminal or log: control and format characters (a newline in
    a file name, an escape sequence, a right-to-left override) written as escapes, so nothing a
    file name holds can start a line of its own or change how the line reads."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"))
        else:
            out.append(ch)
    return "".join(out)


def run_guarded(fn, *args) -> int:
    """``fn(*args)``'s exit status, for every command of the project: an error in the user's input
    (InputError, named in its message) prints one line and gives 2, Ctrl-C one line and 130.
    Anything else is a bug and keeps its traceback."""
    try:
        return fn(*args)
    except InputError as e:
        print(shown(f"error: {e}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C: one line (training says where to resume), not a traceback
        print(shown(f"interrupted: {e}") if str(e) else "interrupted", file=sys.stderr)
        return 130
