# Two commands for a new user:  make reproduce   and   make test
# Each creates the project's virtual environment (.venv) first if it is missing.
#   make reproduce DATA=/path/to/bse-jsrt PROFILE=paper FAMILY=residual   (FAMILY: all | reproduced | residual)
#   make reproduce PROFILE=paper JOBS=8        (8 trainings at once: pays on a GPU, not on a few CPU cores)
#   make setup TORCH_REQ=my-cuda-torch.txt        (a CUDA build of torch; see requirements-torch.txt)

PYTHON    ?= python3
VENV      ?= .venv
PY        := $(VENV)/bin/python
TORCH_REQ ?= requirements-torch.txt
PROFILE   ?=
# (empty: the command line's default profile, config.DEFAULT_PROFILE)
DATA      ?= phantom
FAMILY    ?= all
SEEDS     ?= 1
JOBS      ?= 1

.PHONY: setup reproduce test lab phantom-figure clean-runs

$(VENV)/.installed: pyproject.toml $(TORCH_REQ)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(TORCH_REQ)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m ipykernel install --user --name dae-lib --display-name "Python (dae-lib)" >/dev/null
	touch $@

setup: $(VENV)/.installed

reproduce: setup
	$(PY) -m dae_lib reproduce $(if $(PROFILE),--profile $(PROFILE)) --data $(DATA) --family $(FAMILY) --seeds $(SEEDS) --jobs $(JOBS) $(if $(KERNEL),--kernel $(KERNEL))

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

test: setup
	$(PY) -m pytest -q

phantom-figure: setup
	$(PY) -m dae_lib phantom-figure

clean-runs:
	rm -rf runs .cache
