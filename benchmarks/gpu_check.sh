#!/usr/bin/env bash
# The GPU checks and speed figures in one go, in under 10 minutes on one GPU:
#   1. the tests that run on CUDA (tests/test_gpu.py: every family trains, samples and resumes
#      on the GPU in fp32/TF32 and bf16; streamed batches; the command; NCCL with 2 GPUs);
#   2. benchmarks/side_by_side.py on CUDA, eager modes: step times and MFU of the GPT, the
#      U-Net and the VAE against plain PyTorch, sampler speeds, the largest batch that fits;
#   3. the GPT part again with torch.compile (compilation takes a minute or two).
# Everything it prints is kept in $OUT (default benchmarks/results/gpu). FULL=1 also runs the
# whole test suite first. Run from anywhere: bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-benchmarks/results/gpu}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,utilization.gpu,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
start=$SECONDS
if [ "${FULL:-0}" = 1 ]; then
    timeout 300 "$PY" -m pytest -q -x tests -p no:cacheprovider 2>&1 | tail -5 | tee "$OUT/suite.txt"
fi
timeout 200 "$PY" -m pytest -q tests/test_gpu.py -p no:cacheprovider -rs 2>&1 | tail -15 | tee "$OUT/tests.txt"
timeout 240 "$PY" -m benchmarks.side_by_side --device cuda --threads "$OMP_NUM_THREADS" \
    --parts gpt,unet,vae,diffusion,gpt-sample,pixelcnn,max-batch --no-compile --repeats 5 \
    --json "$OUT/side_by_side.json" 2>&1 | tee "$OUT/side_by_side.txt"
timeout 150 "$PY" -m benchmarks.side_by_side --device cuda --threads "$OMP_NUM_THREADS" \
    --parts gpt --repeats 5 --json "$OUT/gpt_compiled.json" 2>&1 | tee "$OUT/gpt_compiled.txt"
echo "gpu_check: $((SECONDS - start)) s; results in $OUT"
