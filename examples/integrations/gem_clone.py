"""GEM: play a branchgym env through ``gem.make`` and branch it mid-episode with ``spawn(same_state=True)``.

Run: ``python examples/integrations/gem_clone.py`` (docs/integrations/gem.md). Uses the
quickstart's offline lookup env: no network, no Docker.
"""

import gem

LOOKUP = "branchgym.algorithms.quickstart_task:make_lookup_env"


def main() -> dict:
    env = gem.make("branchgym:env", env=LOOKUP, split="smoke", task_id="lookup-smoke-0000")
    obs, info = env.reset()
    key = info["task"]["gold_path"][0]["argument"]
    obs, *_ = env.step(f"<search>{key}</search>")  # "... item #<key> code=<code> ..."
    code = obs.split("code=")[1].split(".")[0]

    twin = env.spawn(same_state=True)  # branchgym.envs.clone: same history, independent future
    wrong = env.step("<answer>\\boxed{0}</answer>")[1]
    right = twin.step(f"<answer>\\boxed{{{code}}}</answer>")[1]
    env.close()
    twin.close()
    return {"question": info["messages"][-1]["content"], "wrong": wrong, "right": right}


if __name__ == "__main__":
    print(main())  # {'question': 'What is the code of item #...', 'wrong': 0.0, 'right': 1.0}
