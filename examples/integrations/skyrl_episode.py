"""SkyRL-gym: build a branchgym env with ``skyrl_gym.make`` and play one episode by hand.

Run: ``python examples/integrations/skyrl_episode.py`` (docs/integrations/skyrl.md). In SkyRL
training the same ``env_class`` / ``env_config`` / ``env_extras`` come from the config and the
dataset rows, and the generator plays the turns.
"""

import skyrl_gym

LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"


def main() -> dict:
    env = skyrl_gym.make(
        "branchgym",
        env_config={"env": LOOKUP, "env_kwargs": {"split": "smoke"}},  # environment.skyrl_gym.branchgym
        extras={"task_id": "lookup-smoke-0000"},                        # the row's env_extras
    )
    messages, meta = env.init([])  # the env renders the prompt: system (tool protocol) + question
    key = messages[-1]["content"].split("#")[1].split("?")[0]
    out = env.step(f"<search>{key}</search>")
    code = out["observations"][0]["content"].split("code=")[1].split(".")[0]
    final = env.step(f"<answer>\\boxed{{{code}}}</answer>")
    metrics = env.get_metrics()
    env.close()
    return {"task_id": meta["task_id"], "reward": final["reward"], "done": final["done"], "metrics": metrics}


if __name__ == "__main__":
    print(main())  # {'task_id': 'lookup-smoke-0000', 'reward': 1.0, 'done': True, 'metrics': {...}}
