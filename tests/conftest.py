"""Fixtures the tests share; plain helpers are in helpers.py."""
import pytest
import torch

from dae_lib.data import load_phantom
from helpers import write_pair_folder


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
