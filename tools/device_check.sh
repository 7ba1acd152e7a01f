#!/usr/bin/env bash
# Issue 4's GPU checks in one call on a lent CUDA machine: CPU/CUDA agreement tests, then
# images/s of every corruption at 224 px (batch 64), eager and compiled (Triton).
#   bash tools/device_check.sh [OUT_DIR]        # from the repository root; logs go to OUT_DIR
# Needs torch with CUDA, torchvision, scipy, pytest (the device image has them); PyAV is optional.
set -uo pipefail
out=${1:-${OUT:-/tmp/device_check}}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" 2>&1 | tee "$out/env.txt"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_corruptions_cuda.py 2>&1 | tail -25 | tee "$out/tests.txt"
for mode in "" "--compile"; do
    timeout 240 python3 tools/bench_corruptions.py --device cuda --sizes 224 --repeats 3 $mode 2>&1 \
        | tee "$out/bench_cuda${mode:+_compiled}.txt"
done
