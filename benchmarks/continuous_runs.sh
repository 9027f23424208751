#!/usr/bin/env bash
# The learning runs behind benchmarks/results/continuous*.md, one process per run, one thread each.
# Usage: bash benchmarks/continuous_runs.sh pendulum|hopper-td3|hopper-ddpg|hopper-sac|hopper-td3-zoo [SEEDS...]
#        ENV=Hopper-v5 bash benchmarks/continuous_runs.sh mujoco-td3 [SEEDS...]  (gymnasium's MuJoCo)
# Runs land in $RUNS_DIR/runs/ (default: benchmarks/runs, ignored by git); benchmarks/report.py reads
# them. A Hopper run writes a checkpoint with its replay buffer every 25k steps; the same command
# with RESUME=path/to/checkpoint.pt continues it as the same run in a later session, and TOTAL=1000000
# raises its budget (300k by default).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
suite="$1"
shift
seeds=("${@:-1}")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "${RUNS_DIR:=$here/benchmarks/runs}"
cd "$RUNS_DIR"
resume=()
[ -n "${RESUME:-}" ] && resume=(--resume "$RESUME")

hopper=(--env-id HopperBulletEnv-v0 --total-timesteps "${TOTAL:-300000}" --eval-frequency 10000
        --eval-episodes 10 --save-model --save-buffer --checkpoint-frequency 25000)
mujoco=(--env-id "${ENV:-Hopper-v5}" --total-timesteps "${TOTAL:-300000}" --eval-frequency 10000
        --eval-episodes 10 --save-model --save-buffer --checkpoint-frequency 25000)
# RL Zoo's tuned TD3 settings for HopperBulletEnv-v0 (those of the peer curve in shared/peers).
zoo=(--gamma 0.98 --learning-rate 7e-4 --hidden-sizes 400 300 --buffer-size 200000
     --learning-starts 10000)

for seed in "${seeds[@]}"; do
  case "$suite" in
    pendulum)
      for algo in td3 ddpg sac; do
        python "$here/${algo}_continuous.py" --env-id Pendulum-v1 --seed "$seed" \
          --total-timesteps 20000 --learning-starts 1000 --eval-frequency 2000 --eval-episodes 10
      done ;;
    hopper-td3) python "$here/td3_continuous.py" "${hopper[@]}" --seed "$seed" "${resume[@]}" ;;
    hopper-ddpg) python "$here/ddpg_continuous.py" "${hopper[@]}" --seed "$seed" "${resume[@]}" ;;
    hopper-sac) python "$here/sac_continuous.py" "${hopper[@]}" --seed "$seed" "${resume[@]}" ;;
    mujoco-td3) python "$here/td3_continuous.py" "${mujoco[@]}" --seed "$seed" "${resume[@]}" ;;
    hopper-td3-zoo)
      python "$here/td3_continuous.py" "${hopper[@]}" "${zoo[@]}" --exp-name td3_continuous_zoo \
        --seed "$seed" "${resume[@]}" ;;
    *) echo "unknown suite $suite" >&2; exit 2 ;;
  esac
done
