# Two commands for a new user:  make reproduce   and   make test
# Each creates the project's virtual environment (.venv) first if it is missing.
#   make reproduce DATA=/path/to/bse-jsrt PROFILE=paper FAMILY=residual   (FAMILY: all | reproduced | residual)
#   make book                                     (the companion as a static site in _build/html; the docs extra)
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

.PHONY: setup setup-docs reproduce test book lab phantom-figure clean-runs

$(VENV)/.installed: pyproject.toml $(TORCH_REQ)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(TORCH_REQ)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m ipykernel install --user --name dae-lib --display-name "Python (dae-lib)" >/dev/null
	touch $@

setup: $(VENV)/.installed

# The book's packages (the docs extra): for make book and make test, never for make reproduce.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,docs]"
	touch $@

setup-docs: $(VENV)/.docs-installed

reproduce: setup
	$(PY) -m dae_lib reproduce $(if $(PROFILE),--profile $(PROFILE)) --data $(DATA) --family $(FAMILY) --seeds $(SEEDS) --jobs $(JOBS) $(if $(KERNEL),--kernel $(KERNEL))

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

test: setup setup-docs
	$(PY) -m pytest -q

# The companion as static HTML in _build/html (README, docs/, the committed executed notebooks; nothing executed)
book: setup-docs
	$(PY) scripts/book.py --out _build/html

phantom-figure: setup
	$(PY) -m dae_lib phantom-figure

clean-runs:
	rm -rf runs .cache
