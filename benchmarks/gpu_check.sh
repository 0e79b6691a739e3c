#!/usr/bin/env bash
# The one prepared GPU check of a session (see benchmarks/README.md). Each step has its
# own time limit so one slow step cannot take the others' results with it. Writes JSON
# reports and logs under $OUT (default results/gpu). Run from the repository root.
#   bash benchmarks/gpu_check.sh
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
if [ -d .whl ]; then  # wheels carried to a machine without package registries
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi

step() { local limit=$1; shift; local name=$1; shift; echo "== $name"; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "rc=$? after $((SECONDS - t0)) s"; tail -n 4 "$OUT/$name.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, kornia, h5netcdf; print('torch', torch.__version__, 'kornia', kornia.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
step 80 pytest-stimuli-cuda python3 -m pytest tests/test_stimuli.py --device cuda -q -x -p no:cacheprovider
step 60 pytest-pipeline-cuda python3 -m pytest tests/test_pipeline.py -q -rs -p no:cacheprovider
step 100 bench-render python3 -m curvebench bench render --device cuda --json "$OUT/bench-render-cuda.json" --quiet
step 120 bench-run python3 -m curvebench bench run --device cuda --stimuli 16384 --batch-size 1024 --repeats 3 --json "$OUT/bench-run-cuda.json"
step 80 run-curves python3 -m curvebench run curves --model inceptionv1 --weights random --device cuda --batch-size 2048 --out /tmp/curves-gpu.h5 --no-progress
step 170 bench-probe python3 -m curvebench bench probe --device cuda --json "$OUT/bench-probe-cuda.json" --quiet
ls -la "$OUT"
