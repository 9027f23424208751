#!/usr/bin/env bash
# The runs behind benchmarks/results/dqn.md: Rainbow with its defaults on CartPole-v1, 30k steps.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python "$here/benchmarks/run.py" --scripts dqn_rainbow --env-ids CartPole-v1 --seeds ${SEEDS:-1 2 3 4 5} \
  --workers "${WORKERS:-1}" --runs-dir "${RUNS_DIR:-$here/benchmarks/runs}" -- --total-timesteps 30000
