#!/usr/bin/env bash
# The runs behind benchmarks/results/dqn*.md, one process per run, one thread each.
# Usage: bash benchmarks/dqn_runs.sh cartpole|ablation|lunar [SEEDS="..."] [WORKERS=n]
#   cartpole: Rainbow with its defaults on CartPole-v1, 30k steps, seeds 1-5
#   ablation: each Rainbow component switched off in turn, and all of them (Nature DQN), on
#             CartPole-v1 with the cartpole suite's seeds and steps (its runs are the full Rainbow);
#             ENV=LunarLander-v3 runs the same variants for 150k steps (seeds 1 2 by default)
#   lunar:    Rainbow with its defaults on LunarLander-v3, 300k steps, seeds 1-3
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs=(--runs-dir "${RUNS_DIR:-$here/benchmarks/runs}" --workers "${WORKERS:-1}")
run() { python "$here/benchmarks/run.py" --scripts dqn_rainbow "${runs[@]}" "$@"; }
case "$1" in
  cartpole)
    run --env-ids CartPole-v1 --seeds ${SEEDS:-1 2 3 4 5} -- --total-timesteps 30000 ;;
  ablation)
    env="${ENV:-CartPole-v1}"
    if [ "$env" = CartPole-v1 ]; then steps=30000 seeds="${SEEDS:-1 2 3 4 5}"
    else steps=150000 seeds="${SEEDS:-1 2}"; fi
    for variant in "no_double:--no-double" "no_per:--no-per" "no_dueling:--no-dueling" \
        "one_step:--n-step 1" "no_c51:--no-distributional" "no_noisy:--no-noisy" \
        "dqn:--no-double --no-per --no-dueling --n-step 1 --no-distributional --no-noisy"; do
      name=${variant%%:*}
      # shellcheck disable=SC2086  # the flags are words
      run --env-ids "$env" --seeds $seeds -- --total-timesteps "$steps" \
        --exp-name "dqn_rainbow_$name" ${variant#*:}
    done ;;
  lunar)
    run --env-ids LunarLander-v3 --seeds ${SEEDS:-1 2 3} -- --total-timesteps 300000 \
      --eval-frequency 25000 ;;
  *) echo "usage: $0 cartpole|ablation|lunar" >&2; exit 2 ;;
esac
