"""Repository-level pytest set-up.

nbval cannot inject papermill parameters, so the notebooks' parameter cells read their defaults
from the environment: here the test session sets the smoke profile and a temporary output root
(the committed results/ and figures/ are never touched by tests). Kernels inherit this environment.
"""
import os
import tempfile


def pytest_configure(config):
    # Forced, not defaults: the stored notebook outputs that nbval compares are smoke-on-phantom.
    os.environ["DAE_PROFILE"] = "smoke"
    os.environ["DAE_DATA"] = "phantom"
    os.environ["DAE_OUT"] = tempfile.mkdtemp(prefix="dae-test-out-")
    os.environ.setdefault("MPLBACKEND", "Agg")
