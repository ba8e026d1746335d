#!/usr/bin/env bash
# Issue 20's GPU figures in one device call of at most 10 minutes (docs/benchmarks.md, "Many flows as one
# batched model" and "Full-scale GPU timing"). Here, once: python tools/device_wheels.py (.whl/: Snakemake,
# pyhf, zuko, ... that the GPU image lacks). Then the device tool's run with carry [".whl"], timeout_s 600 and
# the command `bash benchmarks/gpu_session.sh`. Each step has its own time limit, so a slow one costs only
# itself; everything lands in $OUT (8 files at most come back).
#   1. flows per GPU-hour: the published-quality flow (15 MADE blocks of [128], fast setting) on 520k
#      sideband events, 1, 10 and 100 flows as one batched model (issue target: 1,500 per GPU-hour)
#   2. a slice of the full-scale scan through Snakemake at full event counts: 10 windows x 3 methods x
#      1 injection x 1 seed, its flows as one batched model; GPU seconds per stage and the utilisation,
#      stopped after 310 s with what finished by then
#   3. tests/test_cuda.py's batched-flow test: members equal flows alone on CUDA, graphed and eager
# SCALE=cpu runs the same steps scaled down on a CPU (the dry run before a GPU session; $OUT defaults
# to /tmp/gpu_session).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_session}
SCALE=${SCALE:-full}
mkdir -p "$OUT"
log="$OUT/session.log"
step() { echo "== $(date -u +%T) $*" | tee -a "$log"; }

if [ -d .whl ]; then
    step "installing $(ls .whl | wc -l) carried wheels"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >>"$log" 2>&1 || { step "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks
else
    export PYTHONPATH=$PWD/src:$PWD/benchmarks
fi
python3 -c "import torch, snakemake, pyhf, zuko, slidescan; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>&1 | tee -a "$log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1

if [ "$SCALE" = full ]; then
    flows=(--setting fast --events 520000 --members 1 10 100 --datasets 10 --epochs 3 --device cuda --batched-only)
    slice=(--scale full --seeds 1 --injections 1000 --timeout 310)
    limits=(120 60)
else
    flows=(--setting default --events 20000 --members 1 4 --datasets 2 --epochs 2 --device cpu --threads 2)
    slice=(--scale cpu --seeds 1 --injections 100 --windows 3.3 3.5 --timeout 1200)
    limits=(300 300)
fi

step "1. batched flows: ${flows[*]}"
timeout "${limits[0]}" python3 benchmarks/batched_flows.py "${flows[@]}" --json "$OUT/batched_flows.jsonl" >>"$log" 2>&1
step "1. rc $?"

# fullscale.py stops Snakemake itself at --timeout (SIGINT cancels the jobs) and reports what finished by then
step "2. full-scale slice: ${slice[*]}"
python3 benchmarks/fullscale.py --pack scan --workdir /tmp/fullscale_slice --json "$OUT/fullscale_slice.jsonl" \
    "${slice[@]}" >>"$log" 2>&1
step "2. rc $?"
results=$(ls -d /tmp/fullscale_slice/results/* 2>/dev/null | head -1)
if [ -n "$results" ]; then
    cp "$results/jobs.csv" "$OUT/" 2>/dev/null
    cp /tmp/fullscale_slice/gpu_utilisation.csv "$OUT/" 2>/dev/null
    tail -c 300000 /tmp/fullscale_slice/fullscale_snakemake.log >"$OUT/snakemake_tail.log" 2>/dev/null
fi

step "3. tests/test_cuda.py -k batched_flows"
timeout "${limits[1]}" python3 -m pytest -q -p no:cacheprovider -n 0 -o addopts= -k batched_flows tests/test_cuda.py \
    >"$OUT/test_cuda.txt" 2>&1
step "3. rc $? ($(tail -1 "$OUT/test_cuda.txt"))"
step "done"
