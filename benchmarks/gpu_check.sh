#!/usr/bin/env bash
# The GPU checks and speed figures in one go, in about 7 minutes on one GPU:
#   1. the tests that run on CUDA (tests/test_gpu.py: every family trains, samples and resumes
#      on the GPU in fp32/TF32 and bf16; streamed batches; the command; NCCL with 2 GPUs);
#   2. benchmarks/side_by_side.py on CUDA, eager modes: step times and MFU of the GPT (the CPU
#      shape and GPT-2 small's), the U-Net and the VAE against plain PyTorch, the largest batch
#      that fits, sampler speeds;
#   3. the whole suite on the GPU machine (it states the CPU's behaviour there too: only the
#      tests marked gpu see CUDA);
#   4. GPT-2 small again with torch.compile (compilation takes a minute or so).
# Each step has its own time limit, so one that hangs costs only its share. Everything it
# prints is kept in $OUT (default benchmarks/results/gpu). Run from anywhere:
#     bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-benchmarks/results/gpu}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
mkdir -p "$OUT"
start=$SECONDS
stamp() { echo "== $1 ($((SECONDS - start)) s)"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'numpy', numpy.__version__, 'gpus', torch.cuda.device_count())"; uptime; } 2>&1 | tee "$OUT/gpu.txt"
# pytest-xdist, where installed, spreads the tests over processes that share the GPU
par() { "$PY" -c "import xdist" 2>/dev/null && echo "-n $1"; }
# and pytest-timeout, where installed, stops a test that hangs
cap() { "$PY" -c "import pytest_timeout" 2>/dev/null && echo "--timeout $1"; }

stamp "GPU tests"
timeout 170 "$PY" -m pytest -q tests/test_gpu.py -p no:cacheprovider -rs --durations=15 $(par 4) \
    >"$OUT/tests.txt" 2>&1
tail -25 "$OUT/tests.txt"

stamp "side by side, eager"
timeout 170 "$PY" -m benchmarks.side_by_side --device cuda --threads "$OMP_NUM_THREADS" \
    --parts gpt,gpt2,unet,max-batch,vae,diffusion,gpt-sample,pixelcnn --no-compile --repeats 5 \
    --json "$OUT/side_by_side.json" >"$OUT/side_by_side.txt" 2>&1
cat "$OUT/side_by_side.txt"

if [ "${SUITE:-1}" = 1 ]; then
    stamp "the whole suite"
    timeout 120 "$PY" -m pytest -q tests -p no:cacheprovider $(par 12) $(cap 90) --durations=10 >"$OUT/suite.txt" 2>&1
    grep -E "^(FAILED|ERROR)" "$OUT/suite.txt" | head -30; tail -3 "$OUT/suite.txt"
fi

stamp "GPT-2 small, compiled"
timeout 110 "$PY" -m benchmarks.side_by_side --device cuda --threads "$OMP_NUM_THREADS" \
    --parts gpt2 --repeats 5 --json "$OUT/gpt2_compiled.json" >"$OUT/gpt2_compiled.txt" 2>&1
tail -12 "$OUT/gpt2_compiled.txt"
stamp "done; results in $OUT"
