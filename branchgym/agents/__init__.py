"""Agents and LLM policies. Heavy backends (torch, transformers, vllm) load only when used."""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "Agent": "branchgym.agents.core",
    # scripted agents for testing envs (environment-core issue)
    "OracleAgent": "branchgym.agents.scripted",
    "NoToolAgent": "branchgym.agents.scripted",
    # LLM policies and the token-in/token-out loop (policies issue)
    "SamplingParams": "branchgym.agents.policy",
    "Completion": "branchgym.agents.policy",
    "Policy": "branchgym.agents.policy",
    "HFPolicy": "branchgym.agents.hf",
    "VLLMPolicy": "branchgym.agents.vllm",
    "OpenAIPolicy": "branchgym.agents.openai",
    "Trajectory": "branchgym.agents.trajectory",
    "Segment": "branchgym.agents.trajectory",
    "ToolCall": "branchgym.agents.trajectory",
    "Step": "branchgym.agents.trajectory",
    "LiveEpisode": "branchgym.agents.loop",
    "run_round": "branchgym.agents.loop",
    "TokenGenerator": "branchgym.agents.policy",
    "AsyncTokenGenerator": "branchgym.agents.policy",
    "run_episode": "branchgym.agents.loop",
    "run_episodes": "branchgym.agents.loop",
    "PolicyAgent": "branchgym.agents.policy_agent",
    "entropy_from_logits": "branchgym.agents.entropy",
    "arpo_segment_entropy": "branchgym.agents.entropy",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
