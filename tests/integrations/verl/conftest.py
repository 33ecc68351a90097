"""Fixtures of the verl integration tests: verl's own config, loops instantiated as verl's
worker does, the tiny model, and one local CPU Ray cluster for the session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tiny_server import TinyServerManager, require_verl, tiny_model_dir

PROMPT_LENGTH = 512
RESPONSE_LENGTH = 384


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return tiny_model_dir()


@pytest.fixture(scope="session")
def verl_config(tiny_dir) -> Any:
    """verl's own trainer config (``ppo_trainer.yaml``, composed by Hydra as verl's entry point
    does) pointed at the tiny model."""
    require_verl()
    import verl
    from hydra import compose, initialize_config_dir

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=[
            f"actor_rollout_ref.model.path={tiny_dir}",
            f"data.max_prompt_length={PROMPT_LENGTH}",
            f"data.max_response_length={RESPONSE_LENGTH}",
            "actor_rollout_ref.rollout.agent.num_workers=1",
            "actor_rollout_ref.rollout.calculate_log_probs=True",
            "actor_rollout_ref.rollout.name=vllm",  # mandatory in verl's config; no engine starts here
        ])


@pytest.fixture(scope="session")
def tokenizer(tiny_dir) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture
def make_loop(verl_config, tokenizer):
    """``make_loop(agent_name, server, **knobs)``: the loop registered under ``agent_name``,
    instantiated with Hydra exactly as ``AgentLoopWorker._run_agent_loop`` does (knobs play the
    part of the keys of an ``agent_loop_config_path`` entry)."""
    import hydra
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset

    def make(name: str, server: Any, **knobs: Any) -> Any:
        entry = {**_agent_loop_registry[name], **knobs}
        return hydra.utils.instantiate(
            config=entry, trainer_config=DictConfigWrap(config=verl_config), server_manager=server,
            tokenizer=tokenizer, processor=None, hf_model_type=None, dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(verl_config.data), tools=ToolListWrap([]),
        )

    return make


@pytest.fixture
def server_factory(tiny_dir):
    return lambda **kw: TinyServerManager(tiny_dir, **kw)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local CPU Ray cluster (2 CPUs) for the whole session."""
    require_verl()
    import ray

    here = os.path.dirname(os.path.abspath(__file__))  # tiny_server, importable in the actors
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": here, "TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def transfer_queue(ray_cluster):
    """verl's TransferQueue (one storage unit) on the session's Ray cluster. TransferQueue's
    default (two storage units) did not finish ``init()`` within 10 minutes on a 2-CPU cluster."""
    import transfer_queue as tq
    from omegaconf import OmegaConf

    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield tq
    tq.close()
