"""Scoring: answer extraction, rule metrics, MATH equivalence, ARPO's training reward, the LLM
judge and pass@k, as ARPO's evaluation computes them (docs/benchmarks.md#evaluating-a-model)."""

from branchgym._lazy import lazy_exports

_EXPORTS = {
    "extract_answer": "branchgym.envs.scoring.extract",
    "extract_prediction": "branchgym.envs.scoring.extract",
    "last_boxed_only_string": "branchgym.envs.scoring.extract",
    "remove_boxed": "branchgym.envs.scoring.extract",
    "last_lines": "branchgym.envs.scoring.extract",
    "normalize_answer": "branchgym.envs.scoring.metrics",
    "normalize_squad": "branchgym.envs.scoring.metrics",
    "exact_match": "branchgym.envs.scoring.metrics",
    "substring_acc": "branchgym.envs.scoring.metrics",
    "token_f1": "branchgym.envs.scoring.metrics",
    "squad_f1": "branchgym.envs.scoring.metrics",
    "expand_golds": "branchgym.envs.scoring.metrics",
    "strip_string": "branchgym.envs.scoring.math_equal",
    "is_equiv": "branchgym.envs.scoring.math_equal",
    "math_equal": "branchgym.envs.scoring.math_equal",
    "arpo_train_reward": "branchgym.envs.scoring.train_reward",
    "JUDGE_PROMPT": "branchgym.envs.scoring.judge",
    "judge_decision": "branchgym.envs.scoring.judge",
    "LLMJudge": "branchgym.envs.scoring.judge",
    "pass_at_k": "branchgym.envs.scoring.passk",
    "count_valid_tags": "branchgym.envs.scoring.tool_stats",
    "tool_productivity": "branchgym.envs.scoring.tool_stats",
    "score": "branchgym.envs.scoring.rewards",
    "REWARDS": "branchgym.envs.scoring.rewards",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
