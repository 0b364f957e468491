#!/usr/bin/env bash
# Ensemble member equality (device vs CPU solo) and throughput, see benchmarks/gpu_check.py.
#   bash benchmarks/gpu_check.sh            # GPU machine: writes benchmarks/results/gpu_check.{json,md}
#   bash benchmarks/gpu_check.sh --smoke    # CPU, seconds (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
