"""TRL: GRPOTrainer on a branchgym env through ``rollout_func`` (flat or tree rollouts of branchgym's
engine), or through ``environment_factory`` (TRL's tool loop over the env's tools).

Run: ``python examples/integrations/trl_grpo.py [--tree]`` (docs/integrations/trl.md). CPU only,
about a minute: a tiny model built locally (nothing downloaded) on the quickstart's offline lookup
task, two GRPO steps. Swap in your own model and env for real training.
"""

import sys

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from branchgym.algorithms.config import BranchConfig
from branchgym.algorithms.quickstart_task import lookup_tasks, make_lookup_env
from branchgym.integrations.trl import BranchgymRollout, env_reward, environment_class, task_dataset


def make_env():
    # ARPO's training reward: -1 for a malformed answer, F1 of the answer otherwise, 0 without one
    return make_lookup_env("train", reward="arpo_train")


def tiny_model():
    from branchgym.agents import tiny

    path = tiny.build_cached(vocab_size=2048, layers=2, hidden=64, pretrain_steps=200, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    return AutoModelForCausalLM.from_pretrained(path), tokenizer


def rollout_trainer(model, tokenizer, output_dir, *, tree=False, max_steps=2, **config):
    # num_generations=4 samples per task; a tree of n=4 trajectories (2 global, 2 from env clones)
    branch = BranchConfig(n=4, initial=2) if tree else None
    args = GRPOConfig(output_dir=output_dir, use_cpu=True, per_device_train_batch_size=8, num_generations=4,
                      max_steps=max_steps, max_completion_length=96, learning_rate=1e-3, beta=0.0,
                      logging_steps=1, report_to="none", save_strategy="no", seed=0, **config)
    return GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        reward_funcs=[env_reward],                                   # the env's reward, logged by TRL
        train_dataset=task_dataset([t.id for t in lookup_tasks("train")[:8]]),   # prompts are task ids
        rollout_func=BranchgymRollout(make_env, branch=branch, seed=0),
    )


def environment_trainer(model, tokenizer, output_dir, *, env_class=None, max_steps=2, **config):
    # TRL's own tool loop: the env's tools (search) + answer as methods; the model's chat template
    # must render tool calls (Qwen-style <tool_call> JSON, or set tokenizer.response_template)
    env_class = env_class or environment_class(make_env, name="LookupEnv")
    tasks = [t.id for t in lookup_tasks("train")[:8]]
    args = GRPOConfig(output_dir=output_dir, use_cpu=True, per_device_train_batch_size=8, num_generations=4,
                      max_steps=max_steps, max_completion_length=128, learning_rate=1e-3, beta=0.0,
                      logging_steps=1, report_to="none", save_strategy="no", seed=0, **config)
    return GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        environment_factory=env_class,         # get_reward() is the reward: rewards/LookupEnv/mean
        train_dataset=Dataset.from_dict({"prompt": [[{"role": "user", "content": ""}]] * len(tasks),
                                         "task_id": tasks}),   # reset(task_id=...) appends the question
    )


def main(tree=False, output_dir="/tmp/branchgym-trl-example"):
    model, tokenizer = tiny_model()
    trainer = rollout_trainer(model, tokenizer, output_dir, tree=tree)
    trainer.train()
    return [{k: v for k, v in h.items() if k.startswith(("rewards/", "rollout/"))} for h in trainer.state.log_history]


if __name__ == "__main__":
    for line in main(tree="--tree" in sys.argv):
        print(line)
