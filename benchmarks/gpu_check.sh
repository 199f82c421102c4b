#!/usr/bin/env bash
# The GPU checks, as one script for a machine with an NVIDIA GPU and CuPy (e.g. cupy-cuda13x on
# Python 3.12). Nothing is installed: it runs from the checkout. From the repository root:
#
#     bash benchmarks/gpu_check.sh            # each part limited to 240 s
#     bash benchmarks/gpu_check.sh 120        # each part limited to 120 s
#
# Parts: the stand-in's snapshot of CuPy's names against the installed CuPy; every cuda-marked test on
# the real GPU (pytest -m cuda, the same tests CI runs on the CuPy stand-in); the GPU benchmarks (ms per
# training step of the MNIST MLP and the small GPT; the MLP and GPT steps beside PyTorch when it is
# there); a few
# --device cuda steps of each example (the baby GPT, its samples; the MNIST ones when MNIST is found in
# $TINYTENSOR_DATA or shared/data). Each part's output goes to runs/gpu_check/<part>.log; a table of
# parts, exit status and seconds ends the run.
set -uo pipefail
export PYTHONPATH=.
LIMIT=${1:-240}
LOGS=runs/gpu_check
mkdir -p "$LOGS" "$LOGS/out"
DATA=${TINYTENSOR_DATA:-shared/data}
[ -d "$DATA" ] && export TINYTENSOR_DATA="$DATA"

python -c "import tinytensor as tt; assert tt.cuda.is_available(), 'no usable GPU'; print(tt.cuda.get_device_name())" \
    || exit 1

ROWS=()
part() {   # part NAME COMMAND...: run it under the time limit, keep its log, remember the outcome
    local name=$1; shift
    local start=$SECONDS
    timeout "$LIMIT" "$@" >"$LOGS/$name.log" 2>&1
    local status=$?
    ROWS+=("$(printf '%-34s %6s %6ss' "$name" "$status" "$((SECONDS - start))")")
    echo "== $name (exit $status)"; tail -6 "$LOGS/$name.log"
}

part cupy-names python -m tinytensor.testing.fake_cupy --check-names
part pytest-cuda python -m pytest -q -m cuda -p no:cacheprovider
part device-calls-gpu python benchmarks/device_calls.py --gpu
part mlp-step-gpu python benchmarks/mlp_step.py --device cuda --batch 1024 --repeats 5
part gpt-train-step-gpu python benchmarks/gpt_train_step.py --device cuda
part logistic-regression python examples/logistic_regression.py --device cuda --epochs 5 --out-dir "$LOGS/out"
part universal-approximation python examples/universal_approximation.py --device cuda --widths 8 --steps 50 \
    --out-dir "$LOGS/out"
# A few steps of the baby GPT (character-level Shakespeare, 6 x 384, context 256) with MFU in the bar, then
# text from its checkpoint; the full run (5,000 steps, target val loss <= 1.50) is: examples/train_gpt.py --device cuda
part train-gpt python examples/train_gpt.py --device cuda --max-iters 60 --eval-interval 30 --sample-tokens 50 \
    --out-dir "$LOGS/out/gpt"
part train-gpt-tf32 python examples/train_gpt.py --device cuda --tf32 --max-iters 20 --eval-interval 20 \
    --sample-tokens 10 --out-dir "$LOGS/out/gpt_tf32"
part generate python examples/generate.py --device cuda --checkpoint "$LOGS/out/gpt/ckpt.npz" --max-new-tokens 100
if [ -d "${TINYTENSOR_DATA:-}/mnist" ]; then
    for example in train_mnist train_cnn autoencoder; do
        part "$example" python "examples/$example.py" --device cuda --limit 2048 --epochs 1 \
            --data-dir "$TINYTENSOR_DATA/mnist" --out-dir "$LOGS/out"
    done
fi

echo
printf '%-34s %6s %7s\n' part exit time
printf '%s\n' "${ROWS[@]}"
