#!/usr/bin/env bash
# The runs behind benchmarks/results/tennis*.md and maddpg_*.md, one process per run, one thread each.
# Usage: bash benchmarks/maddpg_runs.sh tennis|tennis-independent|spread|multiwalker [SEEDS...]
# Runs land in $RUNS_DIR/runs/ (default: benchmarks/runs, ignored by git); a run writes a checkpoint
# with its replay buffer every 20k steps, and RESUME=path/to/checkpoint.pt continues it.
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
common=(--save-model --save-buffer --checkpoint-frequency 20000)
# Rewards of -100 (multiwalker) or -1 to -3 per step (spread), not Tennis's 0.1: at the default
# learning rates of 1e-3 their critics diverged (mean Q in the thousands); 1e-4 keeps them bounded.
pettingzoo_lr="--actor-learning-rate 1e-4 --critic-learning-rate 1e-4"

for seed in "${seeds[@]}"; do
  case "$suite" in
    tennis)  # the defaults (50k steps) with a shared actor and critic; the final evaluation plays 100 episodes
      python "$here/maddpg_tennis.py" --seed "$seed" --shared-actor --shared-critic --eval-episodes 100 "${common[@]}" "${resume[@]}" ;;
    tennis-independent)
      python "$here/maddpg_tennis.py" --seed "$seed" --shared-actor --shared-critic --eval-episodes 100 --independent \
        --exp-name maddpg_tennis_independent "${common[@]}" "${resume[@]}" ;;
    spread)
      python "$here/maddpg_tennis.py" --env-id simple_spread_v3 --seed "$seed" $pettingzoo_lr \
        --total-timesteps 24000 --eval-frequency 3000 --eval-episodes 20 "${common[@]}" "${resume[@]}" ;;
    multiwalker)
      python "$here/maddpg_tennis.py" --env-id multiwalker_v9 --seed "$seed" $pettingzoo_lr \
        --total-timesteps 24000 --eval-frequency 3000 --eval-episodes 10 "${common[@]}" "${resume[@]}" ;;
    *) echo "unknown suite $suite" >&2; exit 2 ;;
  esac
done
