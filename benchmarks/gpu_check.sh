#!/usr/bin/env bash
# The GPU checks, as one script for a machine with an NVIDIA GPU, CuPy and (optionally) PyTorch:
# the cuda-marked tests, then the GPU benchmarks. Run from the repository root:
#     bash benchmarks/gpu_check.sh
set -uo pipefail
export PYTHONPATH=.
python -c "import tinytensor as tt; assert tt.cuda.is_available(), 'no usable GPU'" || exit 1
python -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tail -15
python benchmarks/mlp_step.py --device cuda --batch 1024
python benchmarks/gpt_train_step.py --device cuda
# A few steps of the baby GPT (character-level Shakespeare, 6 x 384, context 256) with MFU in the bar, then
# text from its checkpoint; the full run (5,000 steps, target val loss <= 1.50) is: examples/train_gpt.py --device cuda
python examples/train_gpt.py --device cuda --max-iters 60 --eval-interval 30 --sample-tokens 50 --out-dir runs/gpu_check_gpt
python examples/train_gpt.py --device cuda --tf32 --max-iters 20 --eval-interval 20 --sample-tokens 10 --out-dir runs/gpu_check_gpt_tf32
python examples/generate.py --device cuda --checkpoint runs/gpu_check_gpt/ckpt.npz --max-new-tokens 100
