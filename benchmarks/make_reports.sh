#!/usr/bin/env bash
# Regenerates benchmarks/results/ (tables, curves, CSVs) and README's results table. The reports
# at the end are rebuilt from committed curve CSVs, so they run on a fresh clone; the older ones
# read the TensorBoard event files of the runs in $RUNS (default: benchmarks/runs/runs) and are
# skipped where those are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-benchmarks/runs/runs}"
peers=benchmarks/results/peers
report() { python benchmarks/report.py --runs-dir "$runs" --out benchmarks/results "$@"; }
if [ -d "$runs" ]; then  # the older reports still read run directories (not on a fresh clone)
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
fi
# The learning benchmarks run again after dqn_rainbow.py and ppo.py moved to fused Adam (which
# changes results in their last bits): the *_runs.sh suites with RUNS_DIR=benchmarks/runs/fused.
rerun="${RERUN:-benchmarks/runs/fused/runs}"
if [ -d "$rerun" ]; then
  rerun_report() { local runs="$rerun"; report "$@"; }  # report() reads $runs when called
  rerun_report --name dqn_fused_adam --include "dqn_rainbow" --solve-at 475
  rerun_report --name dqn_ablation_fused_adam --include "dqn_rainbow.*" --solve-at 475 --at 150000
  rerun_report --name ppo_fused_adam --include "ppo.*" --solve-at 475 --at 200000 625000 1000000 \
    --peer "SB3 PPO, RL Zoo settings (gSDE), seed 1=$peers/sb3_ppo_HopperBulletEnv-v0_seed1.jsonl"
fi
# Reports rebuilt from committed curve CSVs alone (these run on a fresh clone). Their CSVs come from
# the run directories the first time, through the blocks below, when those directories exist.
sac_runs="${SAC_RUNS:-benchmarks/runs/sac/runs}"
if [ -d "$sac_runs" ]; then  # SAC on Hopper, 3 seeds, stopped at 150k steps (docs/sac_continuous.md)
  python benchmarks/report.py --runs-dir "$sac_runs" --out /tmp/sac_hopper --name sac_hopper \
    --include "sac_continuous" --until 150000 >/dev/null
  cp /tmp/sac_hopper/sac_hopper_curves.csv benchmarks/results/
fi
a2c_runs="${A2C_RUNS:-benchmarks/runs/a2c/runs}"
if [ -d "$a2c_runs" ]; then  # A2C and SB3's A2C on CartPole-v1, 5 seeds (docs/a2c.md)
  python benchmarks/report.py --runs-dir "$a2c_runs" --out /tmp/a2c --name a2c >/dev/null
  cp /tmp/a2c/a2c_curves.csv benchmarks/results/
fi
csv=benchmarks/results
python benchmarks/report.py --from-csv $csv/sac_hopper_curves.csv $csv/continuous_curves.csv \
  --include "(sac|td3|ddpg)_continuous" --name sac_vs_td3 --until 150000 --out $csv \
  --at 50000 100000 150000 >/dev/null
python benchmarks/report.py --from-csv $csv/a2c_curves.csv --name a2c --out $csv --solve-at 475 \
  --at 50000 100000 200000 >/dev/null
python benchmarks/tabular_curves.py report >/dev/null
