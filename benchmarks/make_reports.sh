#!/usr/bin/env bash
# Regenerates benchmarks/results/ (tables, curves, CSVs) and README's results table from the
# TensorBoard event files of the runs in $RUNS (default: benchmarks/runs/runs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-benchmarks/runs/runs}"
peers=benchmarks/results/peers
report() { python benchmarks/report.py --runs-dir "$runs" --out benchmarks/results "$@"; }
report --name continuous --include "(td3|ddpg)_continuous.*" --at 100000 150000 200000 300000 \
  --peer "SB3 TD3, RL Zoo settings, seed 1=$peers/sb3_td3_HopperBulletEnv-v0_seed1.jsonl"
report --name reinforce --include "reinforce.*" --solve-at 475 --late-from 100000
report --name ppo --include "ppo.*" --solve-at 475 --at 200000 625000 1000000 \
  --peer "SB3 PPO, RL Zoo settings (gSDE), seed 1=$peers/sb3_ppo_HopperBulletEnv-v0_seed1.jsonl"
report --name dqn --include "dqn_rainbow" --solve-at 475
report --name dqn_ablation --include "dqn_rainbow.*" --solve-at 475 --at 150000
report --name results --readme README.md
report --name maddpg --include "maddpg_tennis.*" --baseline "Tennis=random play=0.0147" \
  --baseline "simple_spread_v3=random play=-76.2" --baseline "multiwalker_v9=random play=-310.8"
python benchmarks/tennis_report.py --runs-dir "$runs" --out benchmarks/results --random-play 0.0147
