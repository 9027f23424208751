#!/usr/bin/env bash
# The runs behind docs/a2c.md: a2c.py and Stable-Baselines3's A2C with the same settings (our
# defaults), interleaved seed by seed by benchmarks/peers.py, one thread each.
# Usage: bash benchmarks/a2c_runs.sh cartpole|pendulum
# Runs land in $RUNS_DIR/runs/ (default: benchmarks/runs/a2c, ignored by git).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
runs="${RUNS_DIR:-$here/benchmarks/runs/a2c}"
case "$1" in
  cartpole)
    python "$here/benchmarks/peers.py" a2c --seeds 1 2 3 4 5 --runs-dir "$runs" -- \
      --env-id CartPole-v1 --total-timesteps 200000 --eval-frequency 10000 --eval-episodes 10 ;;
  pendulum)
    python "$here/benchmarks/peers.py" a2c --seeds 1 2 3 --runs-dir "$runs" -- \
      --env-id InvertedPendulumBulletEnv-v0 --total-timesteps 200000 --eval-frequency 10000 \
      --eval-episodes 10 ;;
  *) echo "unknown suite $1" >&2; exit 2 ;;
esac
