"""Repository-level pytest set-up.

nbval cannot inject papermill parameters, so the notebooks' set-up (pipeline.notebook_setup) takes
them from the environment variables config.ENVIRONMENT names: here the test session sets the
smoke profile, the phantom and a temporary output root (the committed results/ and figures/ are
never touched by tests). Kernels inherit this environment.
"""
import os
import tempfile


def pytest_configure(config):
    from dae_lib.config import ENVIRONMENT  # not pipeline: no Jupyter package needed to collect the CUDA tests

    # Forced, not defaults: the stored notebook outputs that nbval compares are smoke-on-phantom.
    os.environ[ENVIRONMENT["profile"]] = "smoke"
    os.environ[ENVIRONMENT["data_dir"]] = "phantom"
    os.environ[ENVIRONMENT["out_root"]] = tempfile.mkdtemp(prefix="dae-test-out-")
    os.environ["MPLBACKEND"] = "Agg"  # forced: a user's QtAgg would fail on a headless machine


def pytest_collection_modifyitems(items):
    """The notebooks' cells (nbval) run in their notebooks' order, after the tests: a notebook is a
    sequence (each cell needs the ones before it, 03 the runs 02 trained). The tests themselves may
    run in any order (pytest-randomly shuffles them, and the notebooks' cells with them, before this
    hook restores the cells' order)."""
    cells = [item for item in items if hasattr(item, "cell_num")]
    if cells:
        others = [item for item in items if not hasattr(item, "cell_num")]
        items[:] = others + sorted(cells, key=lambda item: (str(item.path), item.cell_num))
