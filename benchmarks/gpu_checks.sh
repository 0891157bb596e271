#!/usr/bin/env bash
# Every check that needs a GPU, in one run (issue 11, Deliver 3): run from the repository root as
#
#     OUT=/some/folder bash benchmarks/gpu_checks.sh
#
# with the wheels of .whl/ beside it (benchmarks/gpu_wheels.sh: transformers 5.25 and what it needs beyond a
# machine that has torch, transformers < 5.23, tokenizers, numpy, scipy, pytest, pillow, pyyaml; omegaconf).
# They go into /tmp/site, put before the machine's own packages, together with src/ (no pip install of the
# project, no network). Steps, each with its own time limit and log $OUT/<step>.log, each run whatever the
# previous one did; the whole stays under BUDGET seconds (a step is cut to what is left, or skipped):
#   prefill    benchmarks/prefill.py --device cuda: LLaVA-NeXT-Video-7B-shaped model, random weights, bf16;
#              added prefill ReDiPrune − DivPrune (target < 5 ms) at 8 (and 32) frames
#   selection  benchmarks/selection.py --device cuda: loop/batched ≥ 20 on the video shapes
#   tests      the CUDA-only tests (they skip on a machine without CUDA)
#   cdpruner   benchmarks/cdpruner.py --device cuda
# $OUT/summary.log: each step's exit code and seconds, and every target line.
#
#     bash benchmarks/gpu_checks.sh --cpu     # the same steps on the CPU, small and quick: checks the script
#     bash benchmarks/gpu_checks.sh --budget 300
set -u

OUT=${OUT:-/tmp/gpu_checks}
BUDGET=330
DEVICE=cuda
while [ $# -gt 0 ]; do
    case $1 in
        --cpu) DEVICE=cpu ;;
        --budget) BUDGET=$2; shift ;;
        *) echo "error: argument $1 is not allowed; expected --cpu or --budget SECONDS" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$OUT"
SUMMARY="$OUT/summary.log"
: >"$SUMMARY"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_HOME=/tmp/gpu_checks_hf

say() { echo "$*" | tee -a "$SUMMARY"; }

# ---------------------------------------------------------------- packages
SITE=/tmp/site
if ls .whl/*.whl >/dev/null 2>&1; then
    if ! timeout 90 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" .whl/*.whl >"$OUT/install.log" 2>&1; then
        say "pip install of .whl failed (see install.log); unpacking the wheels instead"
        python3 - "$SITE" .whl/*.whl <<'EOF' >>"$OUT/install.log" 2>&1
import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])
EOF
    fi
else
    say "no .whl/ here: using the machine's own packages"
fi
export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

{
    date -u
    nvidia-smi -L
    nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv
    python3 - <<'EOF'
import sys, torch, transformers, tokenizers, huggingface_hub, numpy, omegaconf
print("python", sys.version.split()[0], "| torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available(), "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("transformers", transformers.__version__, transformers.__file__)
print("tokenizers", tokenizers.__version__, "| huggingface_hub", huggingface_hub.__version__,
      "| numpy", numpy.__version__, "| omegaconf", omegaconf.__version__)
import rediprune.models  # noqa: F401  (the adapter's imports all resolve)
print("rediprune.models imports: ok")
EOF
} 2>&1 | tee "$OUT/env.log"

# ---------------------------------------------------------------- steps
step() {  # step NAME CAP_SECONDS COMMAND...: run with min(CAP, what is left of BUDGET) seconds
    local name=$1 cap=$2
    shift 2
    local left=$((BUDGET - SECONDS))
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 15 ]; then
        say "SKIPPED $name: ${left}s left of the ${BUDGET}s budget"
        return
    fi
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    say "=== $name: exit $rc in $((SECONDS - start))s$([ "$rc" -eq 124 ] && echo ' (TIMED OUT)')"
}

TESTS=("tests/test_models.py::test_cuda_half_precision" "tests/test_baselines.py::test_cuda_matches_cpu")
if [ "$DEVICE" = cuda ]; then
    step prefill 150 python3 benchmarks/prefill.py --device cuda --frames 8,32 --ratios 0.1,0.05,0.15 --repeats 15 --warmup 3
    step selection 60 python3 benchmarks/selection.py --device cuda --repeats 15 --warmup 3
    step tests 90 python3 -m pytest -q -p no:cacheprovider "${TESTS[@]}"
    step cdpruner 60 python3 benchmarks/cdpruner.py --device cuda --repeats 11 --warmup 2
else  # --cpu: the script itself, on the tiny shape; the CUDA tests skip, their CPU twin runs
    step prefill 150 python3 benchmarks/prefill.py --device cpu --shape tiny --frames 8 --ratios 0.1 --repeats 3 --warmup 1
    step selection 60 python3 benchmarks/selection.py --device cpu --repeats 1 --warmup 0
    step tests 90 python3 -m pytest -q -p no:cacheprovider "${TESTS[@]}" "tests/test_models.py::test_bfloat16_on_cpu"
    step cdpruner 60 python3 benchmarks/cdpruner.py --device cpu --repeats 1 --warmup 0
fi

# ---------------------------------------------------------------- summary
{
    echo "--- targets and results (total ${SECONDS}s)"
    grep -h -E "^target|^added prefill|^device=|^MISMATCH|passed|failed|skipped in|Error:" \
        "$OUT/prefill.log" "$OUT/selection.log" "$OUT/tests.log" "$OUT/cdpruner.log" 2>/dev/null
} | tee -a "$SUMMARY"
