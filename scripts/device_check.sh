#!/usr/bin/env bash
# Everything that needs a GPU, in one command, on a machine with one (a few minutes on an H100/H200):
#   1. the CUDA tests (tests/test_cuda.py: fit, resume, inference CUDA vs CPU),
#   2. the speed benchmark at 256 and 512 px (rows appended to results/benchmarks.csv, with the
#      device, torch and CUDA versions and peak memory),
#   3. the paper profile end to end, both model families (python -m dae_lib reproduce, what
#      `make reproduce PROFILE=paper` runs), its wall time appended to results/wall_times.csv;
#   4. (only when named: STEPS=4) the v2 candidates of issue 23, side by side, each within MINUTES
#      (default 6): python -m dae_lib.studies.v2 train (runs/v2/; then `select` on any machine).
#      V2_CANDIDATES="render-aspect ..." names which (default: every one in studies/v2.CANDIDATES,
#      JOBS_V2 at a time, default 4: name a few, or the minutes multiply).
#
#   scripts/device_check.sh [DATA_DIR]          (default ../shared/data/bse-jsrt-512, else the phantom)
#   PY=/path/to/python scripts/device_check.sh  (default: python3 on PATH; .venv/bin/python if present)
#   SKIP_PAPER=1 scripts/device_check.sh        (steps 1 and 2 only; the same as STEPS="1 2")
#   STEPS=3 scripts/device_check.sh             (only the steps named: any of 1 2 3 4)
#   JOBS=1 scripts/device_check.sh              (trainings of step 3 one at a time; default 8 at once)
#
# A failing step does not hide the others: each runs, and the script ends with the list of the
# failed ones (exit 1).
#
# It names what is missing and stops. A GPU machine's image may have torch but not kornia,
# papermill or pydicom: bring them as wheels. scripts/gpu-wheels.txt pins them and everything they
# need beyond such an image; on a machine with internet (for the GPU machine's Python, e.g. 3.12):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_28_x86_64 -d wheels/ -r scripts/gpu-wheels.txt
# and there:  pip install --no-index --no-deps wheels/*.whl   (or --target DIR, then PYTHONPATH=DIR)
# The data folder must be on that machine too (a copy of it, never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DATA=${1:-../shared/data/bse-jsrt-512}
[ -d "$DATA" ] || DATA=phantom

missing=()
needs="torch torchmetrics kornia pandas matplotlib safetensors yaml pydicom tqdm pytest"
STEPS=${STEPS:-$([ -n "${SKIP_PAPER:-}" ] && echo "1 2" || echo "1 2 3")}
wanted() { case " $STEPS " in *" $1 "*) return 0;; *) return 1;; esac; }
if wanted 3; then needs="$needs papermill ipykernel"; fi   # step 3 executes the notebooks
for mod in $needs; do  # found, not imported: a start of Python each, not of torch (a package that is there but breaks on import fails its step)
  "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$mod') is None)" 2>/dev/null || missing+=("$mod")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "device_check: missing Python packages for $PY: ${missing[*]}" >&2
  echo "  install them (or their wheels: pip install --no-index --find-links wheels/ ${missing[*]})" >&2
  exit 2
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "device_check: torch ($("$PY" -c 'import torch; print(torch.__version__)')) sees no CUDA device; nothing to check here" >&2
  exit 3
fi
"$PY" -c "import torch; print(f'device_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}')"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

failed=()
step() {  # step NAME COMMAND...: run it, note a failure, go on
  local name=$1; shift
  echo "== $name"
  local t0=$SECONDS
  if "$@"; then echo "== $name: ok in $((SECONDS - t0)) s"; else echo "== $name: FAILED (exit $?)"; failed+=("$name"); fi
}

if wanted 1; then
  step "1. CUDA tests" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m cuda tests/test_cuda.py
fi
if wanted 2; then
  step "2. benchmark (256 and 512 px)" "$PY" -m dae_lib.studies.bench --sizes 256 512 --device cuda --kinds train infer
fi
if wanted 3; then
  step "3. paper profile end to end, both families, data: $DATA, ${JOBS:-8} trainings at once" \
    "$PY" -m dae_lib reproduce --profile paper --data "$DATA" --family all --device cuda --jobs "${JOBS:-8}"
fi
if wanted 4; then
  step "4. v2 candidates (issue 23), data: $DATA, ${MINUTES:-6} minutes each, side by side" \
    "$PY" -m dae_lib.studies.v2 train --data "$DATA" --device cuda --jobs "${JOBS_V2:-4}" --minutes "${MINUTES:-6}" \
    ${V2_CANDIDATES:+--candidates $V2_CANDIDATES}
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "device_check: failed: ${failed[*]}" >&2
  exit 1
fi
echo "device_check: done; results/benchmarks.csv, results/wall_times.csv and results/table1.md have the new rows"
