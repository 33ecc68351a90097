"""The recipe's advantage step and start-up checks on CPU: a ``branchgym_tree``-shaped verl
batch (several outputs per session, tree fields in ``extra_fields``, verl's ``entropy``) gives
branchgym's ARPO / AEPO / EMPG advantages on the same leaves, whatever the row order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("verl", reason="pip install --no-deps verl==0.9.1 (branchgym[verl])")

from verl import DataProto  # noqa: E402

from branchgym.algorithms.advantages import aepo, arpo_hard, grpo  # noqa: E402
from branchgym.algorithms.empg import empg  # noqa: E402
from branchgym.algorithms.inputs import AdvantageInputs  # noqa: E402
from branchgym.errors import ConfigError  # noqa: E402
from branchgym.integrations.verl.advantage import (  # noqa: E402
    compute_advantage,
    env_rewards_into_scores,
    step_ids_from_mask,
)
from branchgym.integrations.verl.checks import check_config  # noqa: E402
from tiny_server import recipe_trainer  # noqa: E402

T = 8
# (uid, tree, row, parent_row, branch_point, reward, mask): a clone repeats its parent's mask
# up to the branch point; 0s are tool-result tokens and padding.
M_A = [1, 1, 0, 0, 1, 1, 1, 0]
M_B = [1, 1, 1, 0, 0, 1, 0, 0]
LEAVES = [
    ("p", "t1", 0, -1, 0, 1.0, M_A),
    ("p", "t1", 1, -1, 0, 0.0, M_B),
    ("p", "t1", 2, 0, 4, 1.0, M_A[:4] + [1, 0, 0, 0]),
    ("p", "t1", 3, 2, 5, 0.0, M_A[:4] + [1, 0, 1, 1]),
    ("q", "t2", 0, -1, 0, 0.0, M_B),
    ("q", "t2", 1, -1, 0, 0.0, M_A),
    ("q", "t2", 2, 1, 3, 1.0, M_A[:3] + [0, 1, 1, 0, 0]),
]
# The creation-order tree in branchgym's layout (batch rows, parents before children).
PARENTS = torch.tensor([-1, -1, 0, 2, -1, -1, 5])
POINTS = torch.tensor([0, 0, 4, 5, 0, 0, 3])
# EMPG steps (runs of model tokens) written out by hand for the masks above.
STEPS = {
    tuple(M_A): [0, 0, -1, -1, 1, 1, 1, -1],
    tuple(M_B): [0, 0, 0, -1, -1, 1, -1, -1],
    tuple(M_A[:4] + [1, 0, 0, 0]): [0, 0, -1, -1, 1, -1, -1, -1],
    tuple(M_A[:4] + [1, 0, 1, 1]): [0, 0, -1, -1, 1, -1, 2, 2],
    tuple(M_A[:3] + [0, 1, 1, 0, 0]): [0, 0, -1, -1, 1, 1, -1, -1],
}


def reference_inputs() -> AdvantageInputs:
    gen = torch.Generator().manual_seed(7)
    mask = torch.tensor([leaf[6] for leaf in LEAVES], dtype=torch.float32)
    return AdvantageInputs(
        rewards=torch.tensor([leaf[5] for leaf in LEAVES]),
        group_ids=torch.tensor([0 if leaf[0] == "p" else 1 for leaf in LEAVES]),
        loss_mask=mask,
        entropies=torch.rand(len(LEAVES), T, generator=gen) * 2.0,
        step_ids=torch.tensor([STEPS[tuple(leaf[6])] for leaf in LEAVES]),
        parent_ids=PARENTS,
        branch_points=POINTS,
    )


def verl_batch(ref: AdvantageInputs, perm: list[int]) -> DataProto:
    """The same leaves as verl's trainer holds them: rows in ``perm`` order (verl balances the
    batch across ranks), every output of a session with the session's LAST reward in
    ``token_level_rewards`` (what verl's agent-loop worker does), its own in extra_fields."""
    last_reward = {"t1": LEAVES[3][5], "t2": LEAVES[6][5]}
    scores = torch.zeros(len(LEAVES), T)
    extras, uids = [], []
    for i, (uid, tree, row, parent, bp, reward, mask) in enumerate(LEAVES):
        scores[i, max(j for j, m in enumerate(mask) if m)] = last_reward[tree]
        uids.append(uid)
        extras.append({
            "branchgym_reward": reward, "branchgym_tree_id": tree, "branchgym_row": row,
            "branchgym_parent_row": parent, "branchgym_branch_point": bp,
            "branchgym_error": None,
        })
    p = torch.tensor(perm)
    return DataProto.from_dict(
        tensors={
            "response_mask": ref.loss_mask[p].long(),
            "token_level_scores": scores[p],
            "token_level_rewards": scores[p].clone(),
            "entropy": ref.entropies[p],
        },
        non_tensors={
            "uid": np.array([uids[i] for i in perm], dtype=object),
            "extra_fields": np.array([extras[i] for i in perm], dtype=object),
        },
    )


PERMS = [list(range(7)), [6, 3, 0, 5, 2, 4, 1]]


def test_step_ids_from_mask_matches_hand_written_steps() -> None:
    ref = reference_inputs()
    assert torch.equal(step_ids_from_mask(ref.loss_mask), ref.step_ids)


@pytest.mark.parametrize("perm", PERMS)
def test_env_rewards_replace_the_sessions_last_reward(perm: list[int]) -> None:
    ref = reference_inputs()
    data = env_rewards_into_scores(verl_batch(ref, perm))
    torch.testing.assert_close(data.batch["token_level_rewards"].sum(-1), ref.rewards[perm])
    padded = env_rewards_into_scores(verl_batch(ref, perm), padding=[True] + [False] * 6)
    assert float(padded.batch["token_level_rewards"][0].sum()) == 0.0


@pytest.mark.parametrize("perm", PERMS)
@pytest.mark.parametrize(
    ("estimator", "fn", "params"),
    [
        ("branchgym_arpo_hard", arpo_hard, {}),
        ("branchgym_aepo", aepo, {"weight": 0.2}),
        ("branchgym_empg", empg, {"k": 1.0, "zeta": 0.1}),
        ("branchgym_grpo", grpo, {}),
    ],
)
def test_recipe_step_equals_branchgym(estimator: str, fn, params: dict, perm: list[int]) -> None:
    ref = reference_inputs()
    data = env_rewards_into_scores(verl_batch(ref, perm))
    out = compute_advantage(data, estimator, config={"norm_adv_by_std_in_grpo": True},
                            params=params)
    want = fn(ref, **params)[perm]
    torch.testing.assert_close(out.batch["advantages"], want)
    torch.testing.assert_close(out.batch["returns"], want)
    assert out.batch["advantages"].abs().sum() > 0


def test_hard_attribution_differs_from_soft_on_shared_prefixes() -> None:
    ref = reference_inputs()
    hard = compute_advantage(env_rewards_into_scores(verl_batch(ref, PERMS[0])),
                             "branchgym_arpo_hard").batch["advantages"]
    soft = grpo(ref)
    assert not torch.allclose(hard[:4, :4], soft[:4, :4])  # prefix of tree t1: averaged
    torch.testing.assert_close(hard[1], soft[1])  # row 1 shares nothing


def test_tree_estimator_without_tree_fields_names_the_agent_loop() -> None:
    ref = reference_inputs()
    data = verl_batch(ref, PERMS[0])
    data.non_tensor_batch["extra_fields"] = np.array([{} for _ in range(7)], dtype=object)
    with pytest.raises(ConfigError, match="branchgym_tree"):
        compute_advantage(data, "branchgym_arpo_hard")


def test_unknown_estimator_param_is_refused() -> None:
    data = env_rewards_into_scores(verl_batch(reference_inputs(), PERMS[0]))
    with pytest.raises(ConfigError, match=r"branchgym_empg takes no \['wieght'\]"):
        compute_advantage(data, "branchgym_empg", params={"wieght": 1.0})


def cfg(est: str, loss: str = "vanilla", **algo) -> dict:
    return {
        "algorithm": {"adv_estimator": est, **algo},
        "actor_rollout_ref": {"actor": {"policy_loss": {"loss_mode": loss}}},
    }


def test_check_refuses_branchgym_loss_with_final_output_grpo_on_trees() -> None:
    with pytest.raises(ConfigError) as err:
        check_config(cfg("grpo", "branchgym_aepo"), agents={"branchgym_tree"})
    msg = str(err.value)
    assert "branchgym_aepo" in msg and "adv_estimator=grpo" in msg
    assert "algorithm.adv_estimator=branchgym_grpo" in msg
    check_config(cfg("grpo", "branchgym_aepo"), agents={"branchgym"})  # flat: one output each
    check_config(cfg("branchgym_aepo", "branchgym_aepo"), agents={"branchgym_tree"})


def test_check_reads_agent_names_from_the_train_parquet(tmp_path) -> None:
    import pandas as pd

    path = tmp_path / "train.parquet"
    pd.DataFrame({"agent_name": ["branchgym_tree"], "data_source": ["x"]}).to_parquet(path)
    config = cfg("grpo", "branchgym_gppo")
    config["data"] = {"train_files": [str(path)]}
    with pytest.raises(ConfigError, match="branchgym_gppo.*grpo"):
        check_config(config)


@pytest.mark.parametrize(
    ("config", "agents", "match"),
    [
        (cfg("branchgym_arpo_hard"), {"branchgym"}, "--agent branchgym_tree"),
        (cfg("branchgym_empg", use_kl_in_reward=True), {"branchgym"}, "use_kl_in_reward=False"),
        (cfg("branchgym_aepo", rollout_correction={"rollout_is": "token"}), set(),
         "rollout_correction.rollout_is=null"),
        (cfg("branchgym_grop"), set(), "not a branchgym estimator"),
        (cfg("gae", "branchgym_ppo"), set(), "not a branchgym loss"),
        ({**cfg("grpo"), "branchgym_algo": {"reward": "env"}}, set(), "unknown branchgym_algo"),
        ({**cfg("grpo"), "branchgym_algo": {"reward_source": "judge"}}, set(), "reward_source"),
    ],
)
def test_check_refusals(config: dict, agents: set, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_config(config, agents=agents)


CONFIGS = sorted(
    p.stem for p in __import__("pathlib").Path(
        __import__("branchgym.integrations.verl", fromlist=["x"]).__file__
    ).parent.joinpath("configs").glob("*_qwen3_*.yaml")
)


def compose_config(name: str, overrides: list[str]):
    import os

    from hydra import compose, initialize_config_dir

    import branchgym.integrations.verl as pkg

    d = os.path.join(os.path.dirname(pkg.__file__), "configs")
    with initialize_config_dir(config_dir=d, version_base=None):
        return compose(config_name=name, overrides=overrides)


@pytest.fixture(scope="module")
def tree_parquet(tmp_path_factory) -> str:
    import pandas as pd

    path = tmp_path_factory.mktemp("cfg") / "train.parquet"
    pd.DataFrame({"agent_name": ["branchgym_tree"], "data_source": ["x"]}).to_parquet(path)
    return str(path)


def test_shipped_configs_pass_branchgym_and_verl_checks(tree_parquet: str) -> None:
    from branchgym.integrations.verl.agent_loops import LoopSettings
    from branchgym.integrations.verl.recipe import prepare

    assert len(CONFIGS) == 6
    for name in CONFIGS:
        cfg = compose_config(name, [f"data.train_files={tree_parquet}",
                                    f"data.val_files={tree_parquet}"])
        prepare(cfg)  # branchgym's checks, then verl's validate_config
        settings = LoopSettings.from_sources(cfg.get("branchgym"))
        if cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "branchgym_tree":
            assert cfg.actor_rollout_ref.rollout.n == 1
            assert settings.branch_config().n == 8
        assert cfg.trainer.nnodes == (4 if "multinode" in name else 1)


@pytest.mark.slow
def test_bad_combination_fails_before_any_model_loads(tree_parquet: str, tmp_path) -> None:
    """The recipe's own command line: one error line naming the loss, the estimator and the
    fix, exit status 2, and no Ray session was started (nothing in its temp dir)."""
    import os
    import subprocess
    import sys

    ray_tmp = tmp_path / "ray"
    proc = subprocess.run(
        [sys.executable, "-m", "branchgym.integrations.verl.recipe",
         "--config-name", "aepo_qwen3_8b_1node", f"data.train_files={tree_parquet}",
         f"data.val_files={tree_parquet}", "algorithm.adv_estimator=grpo",
         f"++ray_kwargs.ray_init._temp_dir={ray_tmp}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "RAY_TMPDIR": str(ray_tmp)},
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("branchgym verl recipe: error")]
    assert len(line) == 1
    assert "loss_mode=branchgym_aepo with algorithm.adv_estimator=grpo" in line[0]
    assert "algorithm.adv_estimator=branchgym_grpo" in line[0]
    assert not ray_tmp.exists()


# ------------------------------------------------------------------ the trainer, on TransferQueue
def put_leaves_as_verl_does(tq, ref: AdvantageInputs, partition: str, perm: list[int]):
    """The leaves as verl's agent-loop worker stores a tree session's outputs (``as_dict`` of
    each ``AgentLoopOutput``, the session's last reward copied onto the others, keys
    ``{uid}_{session}_{index}``), with the old log-probs and entropies that
    ``_compute_old_log_prob`` adds, rows in ``perm`` order."""
    from transfer_queue import KVBatchMeta
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    last_reward = {"t1": LEAVES[3][5], "t2": LEAVES[6][5]}
    fields, keys, lengths = [], [], []
    for i in perm:
        uid, tree, row, parent, bp, reward, mask = LEAVES[i]
        n = max(j for j, m in enumerate(mask) if m) + 1  # response length kept by verl
        out = AgentLoopOutput(
            prompt_ids=[3, 4, 5], response_ids=list(range(20, 20 + n)), response_mask=mask[:n],
            response_logprobs=[-0.5] * n, reward_score=last_reward[tree], num_turns=2,
            metrics=AgentLoopMetrics(),
            extra_fields={"branchgym_reward": reward, "branchgym_tree_id": tree,
                          "branchgym_row": row, "branchgym_parent_row": parent,
                          "branchgym_branch_point": bp, "reward_extra_info": {}},
        )
        f = out.as_dict()
        f.update(uid=uid, session_id=0)
        f["loss_mask"] = f["response_mask"]
        f["entropy"] = ref.entropies[i, :n].clone()
        f["old_log_probs"] = torch.full((n,), -0.5)
        fields.append(f)
        keys.append(f"{uid}_0_{row}")
        lengths.append(n)
    tags = [{"status": "success"} for _ in keys]
    tq.kv_batch_put(keys=keys, partition_id=partition, fields=list_of_dict_to_tensordict(fields),
                    tags=tags)
    return KVBatchMeta(partition_id=partition, keys=keys, tags=tags), lengths


@pytest.mark.slow
@pytest.mark.parametrize(
    ("estimator", "fn", "params"),
    [("branchgym_arpo_hard", arpo_hard, {}), ("branchgym_aepo", aepo, {"weight": 0.2}),
     ("branchgym_grpo", grpo, {})],
)
def test_trainer_advantage_step_through_transfer_queue(
    transfer_queue, estimator, fn, params
) -> None:
    """The recipe trainer's ``_compute_advantage`` reads the rows verl stored (extra_fields,
    entropy, rm_scores) and writes per-leaf advantages back: the recipe path (arpo_hard, aepo)
    and verl's own path with the env rewards put in (branchgym_grpo)."""
    tq = transfer_queue
    ref = reference_inputs()
    perm = PERMS[1]
    meta, lengths = put_leaves_as_verl_does(tq, ref, f"train-{estimator}", perm)
    metrics: dict = {}
    recipe_trainer(estimator, **({"weight": 0.2} if estimator == "branchgym_aepo" else {}))._compute_advantage(
        meta, metrics)
    got = tq.kv_batch_get(keys=meta.keys, partition_id=meta.partition_id,
                          select_fields=["advantages", "rm_scores"])
    want = fn(ref, **params)[perm]
    for r, n in enumerate(lengths):
        torch.testing.assert_close(got["advantages"][r], want[r, :n])
        assert float(got["rm_scores"][r].sum()) == LEAVES[perm[r]][5]  # its own reward now
    assert metrics["branchgym/rows_with_env_reward"] == 7.0
