#!/usr/bin/env bash
# The runs behind benchmarks/results/tennis*.md and maddpg_*.md, one process per run, one thread each.
# Usage: bash benchmarks/maddpg_runs.sh tennis|tennis-smooth|tennis-decay|tennis-independent|spread|multiwalker [SEEDS...]
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
# PettingZoo tasks: 8 env copies, one update (of every agent) per 4 transitions, 200k steps; their
# agents are symmetric too, so they share the actor and the critic.
pettingzoo=(--shared-actor --shared-critic --noise-decay-to 0.2 --num-envs 8 --updates-per-step 0.25 --total-timesteps 200000
  --eval-frequency 20000)

for seed in "${seeds[@]}"; do
  case "$suite" in
    tennis)  # 50k steps, shared actor and critic, constant exploration noise; final evaluation 100 episodes
      python "$here/maddpg_tennis.py" --seed "$seed" --shared-actor --shared-critic --noise-decay-to 1.0 \
        --eval-episodes 100 "${common[@]}" "${resume[@]}" ;;
    tennis-smooth)  # the same with target policy smoothing (MATD3's)
      python "$here/maddpg_tennis.py" --seed "$seed" --shared-actor --shared-critic --noise-decay-to 1.0 \
        --target-policy-noise 0.2 --eval-episodes 100 --exp-name maddpg_tennis_smooth "${common[@]}" "${resume[@]}" ;;
    # The ablation pair, both with noise decaying to 0.2 of its scale over the run
    tennis-decay)
      python "$here/maddpg_tennis.py" --seed "$seed" --shared-actor --shared-critic --eval-episodes 100 \
        --noise-decay-to 0.2 --exp-name maddpg_tennis_decay "${common[@]}" "${resume[@]}" ;;
    tennis-independent)
      python "$here/maddpg_tennis.py" --seed "$seed" --shared-actor --shared-critic --eval-episodes 100 --independent \
        --noise-decay-to 0.2 --exp-name maddpg_tennis_independent "${common[@]}" "${resume[@]}" ;;
    spread)
      python "$here/maddpg_tennis.py" --env-id simple_spread_v3 --seed "$seed" "${pettingzoo[@]}" \
        --gamma 0.95 --eval-episodes 20 "${common[@]}" "${resume[@]}" ;;
    multiwalker)
      # falls cost -100: at learning rates of 1e-3 the critics diverged in earlier runs
      python "$here/maddpg_tennis.py" --env-id multiwalker_v9 --seed "$seed" "${pettingzoo[@]}" \
        --actor-learning-rate 1e-4 --critic-learning-rate 1e-4 --eval-episodes 10 "${common[@]}" "${resume[@]}" ;;
    *) echo "unknown suite $suite" >&2; exit 2 ;;
  esac
done
