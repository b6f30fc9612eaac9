"""The project's own errors: problems with what a user gave us, which the user can fix.

The command line prints these as one line (``error: <message>``) with exit status 2; every other
exception is a bug and keeps its traceback. Each message names the file, folder or setting at fault.
Each class is also a subclass of the built-in exception it replaces, so ``except ValueError`` in
older code still catches a :class:`ConfigError`.
"""
from __future__ import annotations


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


class DeviceError(InputError, RuntimeError):
    """A device or precision that this machine does not have."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the message says how many epochs are saved and how to resume. Still
    a KeyboardInterrupt, so code that stops on one still stops."""
