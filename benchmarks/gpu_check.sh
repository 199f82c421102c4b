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
