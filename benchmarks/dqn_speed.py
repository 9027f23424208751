"""Training speed of dqn_rainbow.py, with and without prioritized replay, and against SB3's DQN.

Rainbow with and without prioritized replay, and plain DQN (every Rainbow component off) against
Stable-Baselines3's DQN with the same network, train frequency and batch. Runs interleaved, one
process and one thread each, no evaluation.

The `floor` row is no learner: each step it picks the greedy action with the plain DQN network on
the one observation and steps the env, and once learning has started it runs the target network
forward and the online network forward and backward on a batch, as an update would (no replay
buffer, loss, gradient clipping or optimizer). Its ratio to SB3 bounds what a learner running
these networks' passes in eager PyTorch can reach on this machine.

Usage: python benchmarks/dqn_speed.py --pairs 3 --out benchmarks/results/dqn_speed.md
"""

import argparse
import json
import os
import sys
import time
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from td3_speed import ROOT, interleave, machine, ratio_table  # noqa: E402

PLAIN = [
    "--no-double",
    "--no-per",
    "--no-dueling",
    "--n-step",
    "1",
    "--no-distributional",
    "--no-noisy",
]
VARIANTS = {
    "rainbow": [],
    "rainbow-no-per": ["--no-per"],
    "dqn": PLAIN,
    "floor": PLAIN,
    "sb3": PLAIN,
}


def our_args(flags: list[str], steps: int):
    sys.path.insert(0, ROOT)
    import dqn_rainbow
    import tyro

    base = [
        "--total-timesteps",
        str(steps),
        "--eval-frequency",
        "0",
        "--eval-episodes",
        "1",
        "--no-cuda",
    ]
    return dqn_rainbow, tyro.cli(dqn_rainbow.Args, args=[*base, *flags])


def run_floor(steps: int) -> float:
    """SPS of the env steps and the plain DQN networks' passes alone (see the docstring)."""
    import torch

    module, args = our_args(PLAIN, steps)
    envs = module.make_vector_env(args)
    shape, n_actions = envs.single_observation_space.shape, int(envs.single_action_space.n)
    online, target = (module.QNetwork(shape, n_actions, args) for _ in range(2))
    obs, _ = envs.reset(seed=args.seed)
    batch = torch.randn(args.batch_size, *shape)
    start = time.perf_counter()
    for step in range(steps):
        with torch.no_grad():
            actions = online(torch.as_tensor(obs)).argmax(1).numpy()
        obs, *_ = envs.step(actions)
        if step >= args.learning_starts:
            with torch.no_grad():
                target(batch)
            online(batch).sum().backward()
    envs.close()
    return steps / (time.perf_counter() - start)


def run(variant: str, steps: int) -> float:
    if variant == "floor":
        return run_floor(steps)
    module, args = our_args(VARIANTS[variant], steps)
    if variant != "sb3":
        return module.train(args)["sps"]
    import peers

    model = peers.sb3_dqn(args)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="CartPole-v1 steps per run")
    parser.add_argument("--pairs", type=int, default=3, help="rounds, interleaved")
    parser.add_argument("--out", help="write the markdown report here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        import torch

        torch.set_num_threads(1)
        print(json.dumps({"sps": run(a.worker, a.steps)}))
        return
    results = interleave(__file__, list(VARIANTS), ["--steps", str(a.steps)], a.pairs)
    rainbow = sum(results["rainbow"]) / len(results["rainbow"])
    no_per = sum(results["rainbow-no-per"]) / len(results["rainbow-no-per"])
    pairs = [p / n for p, n in zip(results["rainbow"], results["rainbow-no-per"])]
    per_line = (
        f"PER overhead: SPS with --per / without, per round: "
        f"{', '.join(f'{r:.2f}' for r in pairs)} (means {rainbow:.0f} / {no_per:.0f})"
    )
    table = ratio_table(results)
    print(table + "\n\n" + per_line)
    if a.out:
        command = "python benchmarks/dqn_speed.py " + " ".join(sys.argv[1:])
        with open(a.out, "w") as f:
            f.write(
                f"# DQN training speed\n\n{__doc__.split(chr(10), 2)[2]}\n{table}\n\n"
                f"(The ratio column compares every variant with SB3's DQN; only `dqn` runs the "
                f"same algorithm.)\n\n{per_line}\n\n- env: CartPole-v1, {a.steps} steps per "
                f"run (1000 before learning), {a.pairs} interleaved rounds, one thread each\n"
                f"- machine: {machine()}\n- date: {date.today()}\n- command: `{command}`\n"
            )


if __name__ == "__main__":
    main()
