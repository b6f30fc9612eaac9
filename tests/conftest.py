"""Fixtures the tests share; plain helpers are in helpers.py."""
import pytest
import torch

from dae_lib.data import load_phantom
from helpers import install_wheel, write_pair_folder


@pytest.fixture(scope="session")
def tiny_data():
    """12 phantom cases at 64 px (fast: every training test uses it)."""
    return load_phantom(12, 64, seed=3)


@pytest.fixture
def pair_folder(tmp_path):
    return write_pair_folder(tmp_path / "data")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def installed_package(tmp_path_factory):
    """dae_lib as a user installs it: the wheel built from this checkout, installed into a fresh venv
    outside it (seconds). The venv borrows the running environment's dependencies (a .pth file)
    instead of downloading torch again; dae_lib itself comes only from the wheel. Returns
    ``InstalledPackage`` (its folder, python, bin and site-packages)."""
    return install_wheel(tmp_path_factory.mktemp("wheel"))
