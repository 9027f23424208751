#!/usr/bin/env bash
# The runs behind benchmarks/results/reinforce.md: REINFORCE on CartPole-v1, 200k steps, 3 seeds,
# with the defaults (rewards to go, return normalization, baseline) and with each switched off.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
common=(--scripts reinforce --env-ids CartPole-v1 --seeds 1 2 3 --workers "${WORKERS:-1}"
        --runs-dir "${RUNS_DIR:-$here/benchmarks/runs}")
python "$here/benchmarks/run.py" "${common[@]}" -- --exp-name reinforce
python "$here/benchmarks/run.py" "${common[@]}" -- --exp-name reinforce_no_rtg --no-rewards-to-go
python "$here/benchmarks/run.py" "${common[@]}" -- --exp-name reinforce_no_norm --no-normalize-returns
python "$here/benchmarks/run.py" "${common[@]}" -- --exp-name reinforce_no_baseline --no-baseline
