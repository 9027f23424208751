#!/usr/bin/env bash
# The runs behind benchmarks/results/ppo.md.
# Usage: bash benchmarks/ppo_runs.sh cartpole|hopper|hopper-default-init|mujoco [SEEDS="1 2 3"]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs=(--runs-dir "${RUNS_DIR:-$here/benchmarks/runs}" --workers "${WORKERS:-1}")
# RL Zoo's tuned HopperBulletEnv-v0 settings, as the SB3 peer ran them
zoo=(--total-timesteps 1000000 --num-envs 16 --num-steps 512 --num-minibatches 64
  --update-epochs 20 --gamma 0.99 --gae-lambda 0.9 --learning-rate 3e-5 --clip-coef 0.4
  --log-std-init -2 --hidden-sizes 256 256 --activation relu --normalize-obs --normalize-reward
  --ent-coef 0.0 --gsde --sde-sample-freq 4 --no-anneal-lr --no-clip-vloss
  --eval-frequency 25000 --save-model --checkpoint-frequency 100000)
hopper() {
  python "$here/benchmarks/run.py" --scripts ppo --env-ids HopperBulletEnv-v0 \
    --seeds ${SEEDS:-1 2 3} "${runs[@]}" -- "${zoo[@]}" "$@"
}
case "$1" in
  cartpole)  # the defaults, 100k steps, 5 seeds
    python "$here/benchmarks/run.py" --scripts ppo --env-ids CartPole-v1 --seeds 1 2 3 4 5 \
      "${runs[@]}" -- --total-timesteps 100000 ;;
  hopper)  # with our orthogonal initialization
    hopper ;;
  hopper-default-init)  # with PyTorch's default initialization, as RL Zoo's configs (ortho_init=False)
    hopper --no-ortho-init --exp-name ppo_default_init ;;
  mujoco)  # the defaults on gymnasium's MuJoCo tasks, 1M steps
    python "$here/benchmarks/run.py" --scripts ppo --env-ids Hopper-v5 HalfCheetah-v5 Walker2d-v5 \
      --seeds ${SEEDS:-1 2 3} "${runs[@]}" -- --total-timesteps 1000000 --eval-frequency 100000 \
      --eval-episodes 10 --save-model --checkpoint-frequency 100000 ;;
  *) echo "usage: $0 cartpole|hopper|hopper-default-init|mujoco" >&2; exit 2 ;;
esac
