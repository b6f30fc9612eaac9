"""The package as a user installs it: the wheel built from this checkout, installed into a fresh
virtual environment outside it (the ``installed_package`` fixture, seconds), works on its own: the
profiles, the paper's Table 1 and the weights are read from the install, the `dae-suppress` entry
point answers, the released model removes bone from a phantom radiograph.

`python -m dae_lib reproduce --profile smoke` from the installed package is tested once, in
tests/test_pipeline.py: the pipeline's own end-to-end test runs it from the wheel (one smoke run
serves both checks)."""
from pathlib import Path

from helpers import run_ok


def test_the_installed_package_reads_its_data_from_the_install_not_the_checkout(installed_package):
    pkg = installed_package
    code = (
        "import dae_lib, dae_lib.config as c, dae_lib.runs as r, dae_lib.reporting.table1 as t;"
        "print(dae_lib.__file__); print(c.PROFILE_DIR); print(r.released_folder()); print(t.PAPER_FILE); print(dae_lib.__version__)"
    )
    lines = run_ok([pkg.python, "-c", code], cwd=pkg.root, env=pkg.environment()).split("\n")
    for line in lines[:4]:
        assert Path(line).resolve().is_relative_to(pkg.site.resolve()), line
    assert lines[4] not in ("", "unknown")


def test_the_suppress_entry_point_and_the_released_model_work(installed_package):
    pkg = installed_package
    assert "usage" in run_ok([pkg.bin / "dae-suppress", "--help"], cwd=pkg.root, env=pkg.environment()).lower()
    code = (
        "from dae_lib.runs import load_released; from dae_lib.inference import predict; from dae_lib.phantom import chest_phantom;"
        "x, s, _ = chest_phantom(512, seed=3); out = predict(load_released(), x[None, None])[0, 0];"
        "print(float(((out - s) ** 2).mean()) < float(((x - s) ** 2).mean()))"
    )
    assert run_ok([pkg.python, "-c", code], cwd=pkg.root, env=pkg.environment()).strip() == "True"  # it removes bone from a phantom
