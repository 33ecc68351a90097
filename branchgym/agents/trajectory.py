"""``Trajectory``: the exact token record of one multi-turn episode (docs/algorithms.md#notation).

The response is one token list after the prompt: model segments (``loss_mask`` 1) interleaved
with tokenised env observations (``loss_mask`` 0). Per-token lists (``loss_mask``,
``logprobs``, ``entropies``) align with ``response_ids``; logprob and entropy are 0 on mask-0
tokens. Indices in :class:`Segment` / :class:`ToolCall` / :class:`Step` are response indices.

A trajectory is extendable by clones: :meth:`Trajectory.fork` copies the prefix state (tokens,
masks, segments, counters) and records the branch point, so tree rollouts continue a copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Segment", "ToolCall", "Step", "Trajectory"]


@dataclass
class Segment:
    """One run of model tokens between env observations: response indices ``[start, end)``.

    ``top_logprobs`` holds the rollout engine's top-k logprobs of the first <= 20 tokens
    (ARPO/AEPO branching); ``entropy`` is ARPO's segment entropy over them (None without top-k).
    """

    start: int
    end: int
    finish_reason: str = ""
    stop_string: str | None = None
    top_logprobs: list[dict[int, float]] = field(default_factory=list)
    entropy: float | None = None


@dataclass
class ToolCall:
    """A tool call: the segment that made it, the index of its closing-tag token, the result."""

    segment: int
    stop_index: int
    tool: str
    result_span: tuple[int, int] = (0, 0)


@dataclass
class Step:
    """One ``env.step``: the action text sent, the observation text and its token span."""

    segment: int
    action: str
    observation: str
    obs_span: tuple[int, int]
    reward: float
    terminated: bool
    truncated: bool
    invalid_action: bool = False


@dataclass
class Trajectory:
    """Token ids, loss mask, rollout logprobs and entropies, steps and outcome of one episode."""

    prompt_ids: list[int]
    prompt_text: str = ""
    response_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    """Text of each appended run of tokens, in order (decoded model text / observations)."""
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    end_reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    # tree bookkeeping (docs/algorithms.md#arpo); a root trajectory has parent None
    node_id: int = 0
    parent: int | None = None
    branch_point: int | None = None
    """Response length at which this clone diverged from its parent."""
    branch_depth: int = 0

    # -- views -------------------------------------------------------------------------------

    @property
    def token_ids(self) -> list[int]:
        """Prompt + response ids."""
        return self.prompt_ids + self.response_ids

    @property
    def full_loss_mask(self) -> list[int]:
        """Loss mask over :attr:`token_ids` (0 on the prompt)."""
        return [0] * len(self.prompt_ids) + self.loss_mask

    @property
    def transcript(self) -> str:
        """Prompt text + every appended piece; ``decode(token_ids)`` equals it (tested)."""
        return self.prompt_text + "".join(self.pieces)

    @property
    def num_tool_calls(self) -> int:
        return len(self.tool_calls)

    @property
    def num_generated_tokens(self) -> int:
        return sum(self.loss_mask)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    # -- building ----------------------------------------------------------------------------

    def append_model(
        self,
        ids: list[int],
        logprobs: list[float],
        entropies: list[float],
        text: str,
    ) -> None:
        """Append generated tokens (loss mask 1)."""
        if not (len(ids) == len(logprobs) == len(entropies)):
            raise ValueError("append_model: ids, logprobs and entropies differ in length")
        self.response_ids.extend(ids)
        self.loss_mask.extend([1] * len(ids))
        self.logprobs.extend(logprobs)
        self.entropies.extend(entropies)
        self.pieces.append(text)

    def append_env(self, ids: list[int], text: str) -> tuple[int, int]:
        """Append observation tokens (loss mask 0); returns their response span."""
        start = len(self.response_ids)
        self.response_ids.extend(ids)
        self.loss_mask.extend([0] * len(ids))
        self.logprobs.extend([0.0] * len(ids))
        self.entropies.extend([0.0] * len(ids))
        self.pieces.append(text)
        return start, len(self.response_ids)

    def fork(self, node_id: int) -> Trajectory:
        """An independent copy that continues from here, recording the branch point."""
        child = copy.deepcopy(self)
        child.node_id = node_id
        child.parent = self.node_id
        child.branch_point = len(self.response_ids)
        child.branch_depth = self.branch_depth + 1
        return child

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (info values that are not JSON are repr'd)."""
        from dataclasses import asdict

        d = asdict(self)
        for seg in d["segments"]:
            seg["top_logprobs"] = [
                {str(k): v for k, v in pos.items()} for pos in seg["top_logprobs"]
            ]
        d["info"] = {
            k: v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v)
            for k, v in self.info.items()
        }
        return d
