"""TRL's GRPOTrainer trains on a branchgym env: through ``rollout_func`` (flat and tree rollouts of
branchgym's engine) and through ``environment_factory`` (TRL's own tool loop).

The model is the cached tiny test model (built locally, see branchgym.agents.tiny); the env is
the quickstart's offline lookup env with ARPO's training reward (-1 for a malformed answer, F1
otherwise, 0 without an answer), which varies even for a random model, so updates are real.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("trl")

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "integrations" / "trl_grpo.py"


@pytest.fixture(scope="module")
def example():
    """The docs' example module (docs/integrations/trl.md): the tests train through its trainer."""
    import runpy

    return runpy.run_path(str(EXAMPLE))


def _make_env():
    from branchgym.algorithms.quickstart_task import make_lookup_env

    return make_lookup_env("train", reward="arpo_train")


def _check_row_masks(t) -> None:
    """Model segments are 1, every observation span 0, and nothing else."""
    expect = [None] * len(t.response_ids)
    for seg in t.segments:
        for i in range(seg.start, seg.end):
            expect[i] = 1
    for step in t.steps:
        a, b = step.obs_span
        for i in range(a, b):
            expect[i] = 0
    assert None not in expect, "a response token is neither a model segment nor an observation"
    assert t.loss_mask == expect


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flat", "tree"])
def test_grpo_trainer_runs_branchgym_rollouts(tmp_path, kind, example):
    import torch
    from transformers import TrainerCallback

    model, tok = example["tiny_model"]()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = example["rollout_trainer"](model, tok, str(tmp_path / "out"), tree=kind == "tree")
    rollout = trainer.rollout_func
    seen = []

    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            seen.append((rollout.last_batch, trainer._buffered_inputs[0]))

    trainer.add_callback(Record())
    trainer.train()

    logs = [h for h in trainer.state.log_history if "rewards/env_reward/mean" in h]
    assert len(logs) == len(seen) == 2
    tool_calls = clones = 0
    for log, (batch, buffered) in zip(logs, seen):
        assert batch.kind == kind and len(batch) == 8
        assert [batch.group_ids.count(g) for g in (0, 1)] == [4, 4]  # each tree / group is one GRPO group
        # the reward TRL logs is the env's: each row's reward is what its env steps returned
        for t in batch.trajectories:
            assert t.reward == pytest.approx(sum(s.reward for s in t.steps))
        assert log["rewards/env_reward/mean"] == pytest.approx(sum(batch.rewards) / len(batch), abs=1e-6)
        # TRL's loss mask (tool_mask) and sampling log-probs are the rollout's, row for row
        rows = {tuple(t.response_ids): t for t in batch.trajectories}
        for i in range(len(buffered["completion_ids"])):
            n = int(buffered["completion_mask"][i].sum())
            t = rows[tuple(buffered["completion_ids"][i][:n].tolist())]
            _check_row_masks(t)
            assert buffered["tool_mask"][i][:n].tolist() == t.loss_mask
            assert buffered["sampling_per_token_logps"][i][:n].tolist() == pytest.approx(t.logprobs, abs=1e-6)
            # every observation in the tokens (one that would overflow the budget ends the row)
            obs_text = "".join(s.observation for s in t.steps if s.obs_span[1] > s.obs_span[0])
            assert len(t.response_ids) <= trainer.args.max_completion_length
            masked = [tok_id for tok_id, m in zip(t.response_ids, t.loss_mask) if m == 0]
            assert tok.decode(masked) == obs_text
        tool_calls += batch.tool_calls
        clones += batch.counts.get("clones", 0)
    assert tool_calls > 0, "no tool call in the run: the masks were not exercised"
    from branchgym.agents.policy import TokenGenerator

    assert rollout._generators and all(isinstance(g, TokenGenerator) for g in rollout._generators.values())
    if kind == "tree":
        assert clones > 0, "the tree never branched"
    assert any(not torch.equal(before[k], v) for k, v in model.named_parameters()), "no parameter changed"


def test_groups_must_be_whole_and_match_the_tree():
    from branchgym.algorithms.config import BranchConfig
    from branchgym.errors import ConfigError
    from branchgym.integrations.trl import BranchgymRollout, env_reward
    from branchgym.integrations.trl.rollout import group_task_ids

    assert group_task_ids(["a", "a", "b", "b"], 2) == ["a", "b"]
    assert group_task_ids([[{"role": "user", "content": "a"}]] * 2, 2) == ["a"]
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        group_task_ids(["a", "a", "b"], 2)
    with pytest.raises(ConfigError, match="not one task repeated"):
        group_task_ids(["a", "b", "b", "b"], 2)
    with pytest.raises(ConfigError, match="task_dataset"):
        group_task_ids([{"x": 1}, {"x": 1}], 2)
    with pytest.raises(ConfigError, match="BranchgymRollout"):
        env_reward(["x"])
    r = BranchgymRollout(_make_env, branch=BranchConfig(n=8, initial=2))
    with pytest.raises(ConfigError, match="num_generations"):
        r._play(None, ["lookup-train-0000"], 4, None, 64)


# A compact ChatML template with hermes-style tool calls: TRL's tool loop needs a template that
# renders tool calls and tool messages and stays prefix-preserving; the tools block is one line,
# so sequences stay short for a CPU test. TRL parses replies with its Qwen3 response template.
TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nTools:{% for t in tools %} {{ (t.function or t).name }}{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'assistant' %}<|im_start|>assistant\n{{ m.content }}"
    "{%- for tc in m.tool_calls or [] %}<tool_call>\n{\"name\": \"{{ tc.function.name }}\", \"arguments\": "
    "{{ tc.function.arguments | tojson }}}\n</tool_call>{% endfor %}<|im_end|>\n"
    "{%- elif m.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ m.content }}\n</tool_response><|im_end|>\n"
    "{%- else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _teach_tool_calls(model, tok, env_cls, steps: int = 40) -> None:
    """A few next-token steps on rendered tool-call chats (search, then answer or give up), so that the
    tiny model makes well-formed calls; GRPO then sees tool turns and rewards that differ."""
    import torch
    from transformers.utils import get_json_schema

    from branchgym.algorithms.quickstart_task import lookup_tasks

    probe = env_cls()
    tools = [get_json_schema(probe.search), get_json_schema(probe.answer)]
    probe._close()

    def call(name, args):
        return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": name, "arguments": args}}]}

    chats = []
    for i, t in enumerate(lookup_tasks("train")[:64]):
        key, code = t.gold_path[0].argument, t.answers[0]
        chat = [{"role": "user", "content": t.question}, call("search", {"query": key}),
                {"role": "tool", "name": "search", "content": f"<result>\nPage 1: item #{key} code={code}.\n</result>"},
                call("answer", {"answer": code}) if i % 2 == 0 else {"role": "assistant", "content": "I do not know."}]
        chats.append(tok.apply_chat_template(chat, tools=tools, tokenize=True, return_dict=False))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        rows = [chats[i] for i in torch.randint(len(chats), (16,), generator=gen).tolist()]
        width = max(map(len, rows))
        x = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        loss = model(input_ids=x, attention_mask=mask, labels=x.masked_fill(mask == 0, -100)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.slow
def test_grpo_trainer_with_environment_factory(tmp_path, example):
    import torch
    from transformers import TrainerCallback
    from trl.chat_template_utils import qwen3_template

    from branchgym.integrations.trl import environment_class

    model, tok = example["tiny_model"]()
    tok.chat_template, tok.response_template = TOOL_TEMPLATE, qwen3_template
    Env = environment_class(_make_env, name="LookupEnv")
    assert sorted(n for n in vars(Env) if not n.startswith("_")) == ["search"]  # + inherited answer/reset/get_reward
    scored, observations = [], []

    class Recorded(Env):
        def get_reward(self):
            r = super().get_reward()
            scored.append((self.task_id, list(self.episode), r))
            return r

        def _act(self, action):
            obs = super()._act(action)
            observations.append(obs)
            return obs

    _teach_tool_calls(model, tok, Env)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    buffered = []
    trainer = example["environment_trainer"](model, tok, str(tmp_path / "out"), env_class=Recorded)

    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            buffered.append(trainer._buffered_inputs[0])

    trainer.add_callback(Record())
    trainer.train()

    logs = [h for h in trainer.state.log_history if "rewards/Recorded/mean" in h]
    assert len(logs) == 2 and len(scored) == 16
    for step, log in enumerate(logs):
        got = [r for _, _, r in scored[8 * step : 8 * step + 8]]
        assert log["rewards/Recorded/mean"] == pytest.approx(sum(got) / 8, abs=1e-6)
    # each reward is the env's: replaying the episode's actions on a fresh env gives it again
    for task_id, episode, reward in scored:
        env = _make_env()
        env.reset(options={"task_id": task_id})
        assert sum(env.step(a)[1] for a, _ in episode) == reward
        env.close()
    assert sum(len(e) for _, e, _ in scored) > 0 and sum(h["tools/call_frequency"] for h in logs) > 0
    # tool tokens are masked: every masked run is one tool response holding an env observation
    for batch in buffered:
        for i in range(len(batch["completion_ids"])):
            n = int(batch["completion_mask"][i].sum())
            ids, mask = batch["completion_ids"][i][:n].tolist(), batch["tool_mask"][i][:n].tolist()
            runs, cur = [], []
            for t, m in zip(ids, mask):
                if m == 0:
                    cur.append(t)
                elif cur:
                    runs.append(cur)
                    cur = []
            runs += [cur] if cur else []
            model_text = tok.decode([t for t, m in zip(ids, mask) if m == 1])
            assert "<tool_response>" not in model_text
            for run in runs:
                text = tok.decode(run)
                assert "<tool_response>" in text and any(o and o in text for o in observations), text
    assert any(not torch.equal(before[k], v) for k, v in model.named_parameters()), "no parameter changed"


def test_environment_class_tools_schema_and_episode():
    import gymnasium as gym
    from transformers.utils import get_json_schema

    from branchgym.algorithms.quickstart_task import lookup_tasks
    from branchgym.errors import ConfigError
    from branchgym.integrations.trl import ToolEnvironment, environment_class

    Env = environment_class(lambda: gym.make("DeepResearch-Offline-v0", split="train", sandbox="local"), name="Deep")
    assert issubclass(Env, ToolEnvironment) and Env.__name__ == "Deep"
    schemas = {n: get_json_schema(getattr(Env, n))["function"] for n in ("search", "browse", "python", "answer")}
    assert {n: list(s["parameters"]["properties"]) for n, s in schemas.items()} == {
        "search": ["query"], "browse": ["url"], "python": ["code"], "answer": ["answer"]}
    assert all(s["description"] and s["parameters"]["required"] for s in schemas.values())

    from branchgym.algorithms.quickstart_task import make_lookup_env

    task = lookup_tasks("smoke")[0]
    env = environment_class(lambda: make_lookup_env("smoke", reward="f1"))()
    assert task.question in env.reset(task_id=task.id)
    assert f"={task.answers[0]}" in env.search(task.gold_path[0].argument)
    env.answer(task.answers[0])
    assert env.get_reward() == 1.0 and [a for a, _ in env.episode][0] == f"<search>{task.gold_path[0].argument}</search>"
    assert "over" in env.search(query="again")  # no calls after the answer
    env._close()
    with pytest.raises(ConfigError, match="not a branchgym ToolEnv"):
        environment_class(lambda: gym.make("CartPole-v1"))
