"""Reference values from the official Q-chunking code (github.com/ColinQiyangLi/qc, QC-RLPD agent
`agents/acrlpd.py`, data pipeline `utils/datasets.py`) for chunkbot's parity tests.

It runs in the official code's own environment (JAX, flax, optax, tfp: see docs/parity.md), never in
chunkbot's `.venv`, and writes one small npz per setting into tests/fixtures/. The tests
(tests/test_learner_parity.py) then hold chunkbot to these values without JAX:

* the data: a small OGBench-layout dataset (trajectories of a few steps, success states with mask 0 in
  the middle of a trajectory, terminal flags at trajectory ends), the start indices drawn by
  `Dataset.sample_sequence` and what it returned (chunk rewards, masks, valid, actions, observations);
* the learner: the official agent's initial weights, the normal noise behind each `dist.sample` of three
  consecutive updates (recovered from the same PRNG keys the agent splits), the losses, TD targets,
  Q values, log-probs and gradients of the first update, and every parameter after updates 1, 2 and 3.

    python benchmarks/parity/qc_reference.py --qc_repo=/path/to/qc --out_dir=tests/fixtures
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SETTINGS = {
    # name: (horizon h, num_qs K, bc_alpha, init_temp)
    "qc_h4": (4, 3, 0.3, 0.5),
    "rlpd_h1": (1, 2, 0.0, 1.0),
}
OBS_DIM, ACTION_DIM, HIDDEN, BATCH = 7, 3, (16, 16), 16
DISCOUNT = 0.99
TRAJECTORY_LENGTHS = (9, 7, 12, 10)


def make_dataset(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """OGBench's regular (non-compact) layout after relabelling: every trajectory's last transition has
    terminals = 1; a success state gives reward 0 and mask 0 without ending the trajectory."""
    cols: dict[str, list] = {k: [] for k in ("observations", "actions", "next_observations", "rewards", "masks",
                                               "terminals")}
    for length in TRAJECTORY_LENGTHS:
        obs = rng.normal(size=(length + 1, OBS_DIM)).astype(np.float32)
        success = rng.random(length) < 0.25
        cols["observations"].append(obs[:-1])
        cols["next_observations"].append(obs[1:])
        # online replay holds actions exactly on the bounds (clipped samples): the BC term must clip them
        cols["actions"].append(np.clip(rng.uniform(-1.2, 1.2, (length, ACTION_DIM)), -1, 1))
        cols["rewards"].append(success.astype(np.float32) - 1.0)
        cols["masks"].append(1.0 - success.astype(np.float32))
        cols["terminals"].append(np.eye(1, length, length - 1, dtype=np.float32)[0])
    return {k: np.concatenate(v).astype(np.float32) for k, v in cols.items()}


def flat(tree) -> dict[str, np.ndarray]:
    from flax.traverse_util import flatten_dict

    return {"/".join(k): np.asarray(v) for k, v in flatten_dict(tree).items()}


def reference(qc_repo: str, name: str, out_dir: Path) -> Path:
    sys.path.insert(0, qc_repo)
    import jax
    import jax.numpy as jnp
    from agents.acrlpd import ACRLPDAgent, get_config
    from utils.datasets import Dataset

    h, num_qs, bc_alpha, init_temp = SETTINGS[name]
    rng = np.random.default_rng(0)
    data = make_dataset(rng)
    dataset = Dataset.create(**data)

    config = get_config()
    config.update(dict(actor_hidden_dims=HIDDEN, value_hidden_dims=HIDDEN, num_qs=num_qs, bc_alpha=bc_alpha,
                       init_temp=init_temp, horizon_length=h, discount=DISCOUNT))
    agent = ACRLPDAgent.create(0, data["observations"][0], data["actions"][0], dict(config))

    out: dict[str, np.ndarray] = {f"data/{k}": v for k, v in data.items()}
    out.update({f"init/{k}": v for k, v in flat(agent.network.params).items()})
    out["config/h_K_bc_temp_discount"] = np.array([h, num_qs, bc_alpha, init_temp, DISCOUNT], np.float64)
    out["config/target_entropy"] = np.array(agent.config["target_entropy"], np.float64)

    for step in (1, 2, 3):
        np.random.seed(100 + step)
        idxs = np.random.randint(dataset.size - h + 1, size=BATCH)
        np.random.seed(100 + step)
        batch = dataset.sample_sequence(BATCH, sequence_length=h, discount=DISCOUNT)
        s = f"step{step}/"
        out[s + "idxs"] = idxs
        for k in ("observations", "actions", "rewards", "masks", "valid", "terminals", "next_observations"):
            out[s + "batch/" + k] = np.asarray(batch[k])

        # the PRNG keys of ACRLPDAgent._update / total_loss / critic_loss, split as they split them
        _, rng_key = jax.random.split(agent.rng)
        _, actor_rng, critic_rng = jax.random.split(rng_key, 3)
        _, sample_rng = jax.random.split(critic_rng)
        net = agent.network
        next_dist = net.select("actor")(batch["next_observations"][..., -1, :])
        dist = net.select("actor")(batch["observations"])
        for tag, d, key in (("next", next_dist, sample_rng), ("actor", dist, actor_rng)):
            u = d.distribution.sample(seed=key)
            assert np.allclose(np.tanh(np.asarray(u)), np.asarray(d.sample(seed=key)), atol=1e-6)
            loc, scale = d.distribution.loc, d.distribution.scale.diag
            out[s + f"noise_{tag}"] = np.asarray((u - loc) / scale)

        if step == 1:
            # what the losses see, recomputed the way critic_loss / actor_loss compute them
            next_a = next_dist.sample(seed=sample_rng)
            next_qs = net.select("target_critic")(batch["next_observations"][..., -1, :], next_a)
            target = batch["rewards"][..., -1] + DISCOUNT ** h * batch["masks"][..., -1] * next_qs.mean(0)
            chunk = jnp.reshape(batch["actions"], (BATCH, -1))
            out[s + "target_q"] = np.asarray(target)
            out[s + "q"] = np.asarray(net.select("critic")(batch["observations"], chunk))
            a = dist.sample(seed=actor_rng)
            out[s + "log_prob"] = np.asarray(dist.log_prob(a))
            out[s + "q_pi"] = np.asarray(net.select("critic")(batch["observations"], a).mean(0))
            out[s + "bc_log_prob"] = np.asarray(dist.log_prob(jnp.clip(chunk, -1 + 1e-5, 1 - 1e-5)))
            grads, info = jax.grad(lambda p: agent.total_loss(batch, p, rng=rng_key), has_aux=True)(net.params)  # noqa: B023
            out.update({s + f"grad/{k}": v for k, v in flat(grads).items()})
            out.update({s + f"info/{k}": np.asarray(v) for k, v in info.items()})

        agent, info = agent.update(batch)
        out.update({s + f"params/{k}": v for k, v in flat(agent.network.params).items()})
        out.update({s + f"update_info/{k}": np.asarray(v) for k, v in info.items()})

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"qc_official_{name}.npz"
    np.savez_compressed(path, **out)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qc_repo", required=True, help="checkout of github.com/ColinQiyangLi/qc")
    parser.add_argument("--out_dir", default="tests/fixtures")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS))
    args = parser.parse_args()
    for name in args.settings:
        print(reference(args.qc_repo, name, Path(args.out_dir)))


if __name__ == "__main__":
    main()
