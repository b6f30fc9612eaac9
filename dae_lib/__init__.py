"""dae_lib: the Disentanglement AutoEncoder (DAE) bone-suppression companion (README.md)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dae-lib")  # pyproject.toml holds the number; this reads the installed package's
except PackageNotFoundError:  # a checkout that was never installed (pip install -e .)
    __version__ = "unknown"
