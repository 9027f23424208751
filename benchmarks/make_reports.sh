#!/usr/bin/env bash
# Rebuilds every report in benchmarks/results/ (tables *.md, figures *.png) and README's results
# table from the committed curve CSVs alone, so it runs on a fresh clone (no run directories) and
# leaves git clean. docs/benchmarks.md says what each CSV holds and how new runs add their rows
# (python benchmarks/report.py --runs-dir ... merges them into the CSV, then run this).
#
# Not rebuilt here, because they are measurements rather than reports of committed data: the speed
# tables (*_speed*.md, td3_speed_compile_run.log) come from benchmarks/{td3,ppo,dqn,sac,sumtree}_speed.py
# (sumtree.md from sumtree_speed.py; a2c_speed.md from benchmarks/peers.py a2c, see its header),
# random_play.md from benchmarks/random_play.py, robustness.md from benchmarks/robustness.py,
# cuda_check.md from benchmarks/cuda_check.py (on a GPU machine), and peers/*.jsonl from SB3 runs
# (peers/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
py="${PYTHON:-python}"
out=benchmarks/results
peers=$out/peers
report() { "$py" benchmarks/report.py --out "$out" "$@" >/dev/null; }

# TD3 and DDPG on Pendulum-v1, 5 seeds, 20k steps
report --from-csv $out/continuous_curves.csv --name continuous --env Pendulum-v1
# TD3 with RL Zoo's tuned settings on HopperBulletEnv-v0 (1 seed), beside SB3's TD3 with the same
report --from-csv $out/continuous_curves.csv --name td3_zoo --include td3_continuous_zoo \
  --at 100000 150000 200000 300000 \
  --peer "SB3 TD3, RL Zoo settings, seed 1=$peers/sb3_td3_HopperBulletEnv-v0_seed1.jsonl"
# DDPG, TD3 and SAC on HopperBulletEnv-v0 with their defaults, 3 seeds each, one code version
# (benchmarks/continuous_runs.sh hopper-ddpg|hopper-td3|hopper-sac), beside RL Zoo's 1M figures
zoo=(--baseline "HopperBulletEnv-v0=RL Zoo SAC at 1M=2603.5"
  --baseline "HopperBulletEnv-v0=RL Zoo TD3 at 1M=2681.6")
report --from-csv $out/hopper_family_curves.csv --name hopper_family \
  --at 100000 150000 200000 300000 "${zoo[@]}"
# The same runs continued to 1M from their 300k checkpoints (RESUME=... TOTAL=1000000), as they end
report --from-csv $out/hopper_family_1m_curves.csv --name hopper_family_1m \
  --at 300000 500000 750000 1000000 "${zoo[@]}"
# REINFORCE and its credit-assignment ablation on CartPole-v1
report --from-csv $out/reinforce_curves.csv --name reinforce --solve-at 475 --late-from 100000
# A2C and SB3's A2C with the same settings
report --from-csv $out/a2c_curves.csv --name a2c --solve-at 475 --at 50000 100000 200000
# PPO, DQN and the DQN ablation as run with fused Adam (the current code; the runs before it were
# removed, see docs/benchmarks.md)
report --from-csv $out/ppo_fused_adam_curves.csv --name ppo_fused_adam --solve-at 475 \
  --at 200000 625000 1000000 \
  --peer "SB3 PPO, RL Zoo settings (gSDE), seed 1=$peers/sb3_ppo_HopperBulletEnv-v0_seed1.jsonl"
report --from-csv $out/dqn_fused_adam_curves.csv --name dqn_fused_adam --solve-at 475
report --from-csv $out/dqn_ablation_fused_adam_curves.csv --name dqn_ablation_fused_adam \
  --solve-at 475 --at 150000
# MADDPG on Tennis and two PettingZoo tasks; the random-play levels are random_play.md's means
report --from-csv $out/maddpg_curves.csv --name maddpg --baseline "Tennis=random play=0.0147" \
  --baseline "simple_spread_v3=random play=-76.2" --baseline "multiwalker_v9=random play=-310.8"
# PPO with its defaults on gymnasium's MuJoCo tasks, 3 seeds each, 1M steps
report --from-csv $out/ppo_mujoco_curves.csv --name ppo_mujoco --at 301056 501760
# TD3 with its defaults on Hopper-v5 and HalfCheetah-v5, 3 seeds each, 300k steps
report --from-csv $out/td3_mujoco_curves.csv --name td3_mujoco --at 100000 200000
# PPO's defaults: the table by action space they replaced, SB3's defaults passed as flags before
# they became ours, and SB3's PPO (Hopper compared at 301k, where the flag runs ended)
report --from-csv $out/ppo_defaults_ab_curves.csv $out/ootb_curves.csv --name ppo_defaults_ab \
  --include "ppo_(by_action_space|generic|generic_norm|vf_coef_1)|sb3_ppo_defaults" --until 301056
# TD3 on InvertedPendulumBullet at 30k: its defaults, SB3's TD3 with its own, and TD3 learning after
# 5k random steps instead of 25k, with lr 3e-4 and SB3's 1e-3; and on Pendulum-v1, the two rates
report --from-csv $out/td3_defaults_ab_curves.csv $out/ootb_curves.csv --name td3_defaults_ab \
  --include "td3_continuous.*|sb3_td3_defaults" --env "Pendulum-v1|InvertedPendulumBulletEnv-v0"
# DDPG on InvertedPendulumBullet at 30k: its defaults, SB3's DDPG with its own, and DDPG learning
# after 100 random steps (SB3's learning_starts) instead of 25k
report --from-csv $out/ddpg_defaults_ab_curves.csv $out/ootb_curves.csv --name ddpg_defaults_ab \
  --include "ddpg_continuous.*|sb3_ddpg_defaults"
# Out of the box: each script with nothing but --env-id and a budget, beside SB3 with its own
# defaults (benchmarks/ootb.py)
report --from-csv $out/ootb_curves.csv --name ootb
"$py" benchmarks/ootb_table.py >/dev/null
# Tabular methods beside the optimal policy, and Sutton and Barto's Example 6.6
"$py" benchmarks/tabular_curves.py report >/dev/null
# README's results table
"$py" benchmarks/readme_table.py --readme README.md >/dev/null
