"""The token-in/token-out generator contract: ``SamplingParams``, ``Completion``, the
``TokenGenerator`` / ``AsyncTokenGenerator`` protocols and the ``Policy`` base class.

Every backend (transformers, vLLM, an OpenAI-compatible server) takes prompts as token ids and
returns generated token ids with per-token logprobs and entropies, so that the agent loop and the
trainer never re-tokenise text (re-tokenisation drift breaks training).

Conventions shared by all backends:

- ``logprobs[t] = log softmax(z_t / T)[y_t]`` with ``T`` the sampling temperature (``T = 1`` when
  greedy), before top-k/top-p filtering, which is the quantity the trainer recomputes
  (docs/algorithms.md#entropy).
- ``entropies[t]`` is the entropy of that same distribution, exact where the backend sees the
  logits (``entropy_kind == "exact"``) and ARPO's truncated top-k entropy otherwise
  (``entropy_kind == "topk"``; docs/algorithms.md#entropy).
- A stop string ends generation at the token that completes it; that token is kept, so the
  text ends with the stop string (what ARPO's ``include_stop_str_in_output`` does).

The rollout engine (``branchgym.agents.loop``; docs/rollout.md) accepts any object that satisfies
:class:`TokenGenerator` (sync) or :class:`AsyncTokenGenerator` (async): ``HFPolicy``,
``VLLMPolicy``, ``OpenAIPolicy``, or an integration's own server client, with no subclassing.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from branchgym.errors import ConfigError

__all__ = [
    "SamplingParams", "Completion", "Policy", "FinishReason", "validate_prompts",
    "TokenGenerator", "AsyncTokenGenerator", "generate_with",
]

FinishReason = Literal["stop", "length", "eos"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion per prompt (or ``n`` of them)."""

    max_new_tokens: int = 256
    """Upper bound on generated tokens per completion."""
    temperature: float = 1.0
    """Softmax temperature T; 0 means greedy (argmax). Logprobs/entropies then use T = 1."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]; 1 disables it."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 (or -1, vLLM's spelling) disables it."""
    stop: tuple[str, ...] = ()
    """Stop strings; generation ends at the token that completes the first one to appear."""
    logprobs_topk: int = 0
    """Return the top-k logprobs at every generated position (0: none). ARPO uses 10."""
    seed: int | None = None
    """Seed for this call's sampling; None draws from the backend's own generator."""
    n: int = 1
    """Completions per prompt; results are prompt-major (p0s0, p0s1, ..., p1s0, ...)."""

    def __post_init__(self) -> None:
        if isinstance(self.stop, str) or not all(isinstance(s, str) for s in self.stop):
            raise ConfigError(
                f"SamplingParams.stop must be a tuple of strings, got {self.stop!r}; "
                "write stop=('</search>',) rather than stop='</search>'"
            )
        object.__setattr__(self, "stop", tuple(self.stop))
        if any(s == "" for s in self.stop):
            raise ConfigError(f"SamplingParams.stop contains an empty string: {self.stop!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(
                f"SamplingParams.max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}"
            )
        if not self.temperature >= 0.0:
            raise ConfigError(
                f"SamplingParams.temperature must be >= 0 (0 = greedy), got {self.temperature!r}"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < -1:
            raise ConfigError(
                f"SamplingParams.top_k must be an int >= 0 (0 or -1 disables), got {self.top_k!r}"
            )
        if self.top_k == -1:
            object.__setattr__(self, "top_k", 0)
        if not isinstance(self.logprobs_topk, int) or self.logprobs_topk < 0:
            raise ConfigError(
                f"SamplingParams.logprobs_topk must be an int >= 0, got {self.logprobs_topk!r}"
            )
        if not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"SamplingParams.n must be an int >= 1, got {self.n!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ConfigError(f"SamplingParams.seed must be an int or None, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        """True when sampling is argmax (temperature 0)."""
        return self.temperature == 0.0

    @property
    def logprob_temperature(self) -> float:
        """The T of ``softmax(z / T)`` under which logprobs and entropies are reported."""
        return 1.0 if self.greedy else self.temperature

    def replace(self, **changes: Any) -> SamplingParams:
        """A copy with some fields changed (validated again)."""
        from dataclasses import replace

        return replace(self, **changes)

    @classmethod
    def arpo(cls, stop: Sequence[str], **kw: Any) -> SamplingParams:
        """ARPO's rollout settings: T = 1, top-p 1, top-10 logprobs (docs/algorithms.md#arpo)."""
        return cls(temperature=1.0, top_p=1.0, logprobs_topk=10, stop=tuple(stop), **kw)


@dataclass
class Completion:
    """One generated continuation of a prompt.

    ``token_ids``, ``logprobs`` and ``entropies`` have one entry per generated token. A backend
    without entropies passes ``entropies=None``: they become zeros with ``entropy_kind="none"``.
    ``top_logprobs[t]`` maps token id -> logprob for the top-k tokens at position t, plus the
    sampled token when it is not among them (vLLM's convention); None when not asked.
    ``finish_reason`` is "stop" (then ``stop_string`` is the stop string that matched), "eos"
    (the model emitted an end-of-sequence token, kept as the last token) or "length".
    """

    token_ids: list[int]
    logprobs: list[float]
    entropies: list[float] | None
    text: str
    finish_reason: FinishReason
    stop_string: str | None = None
    top_logprobs: list[dict[int, float]] | None = None
    entropy_kind: Literal["exact", "topk", "sampled", "none"] = "exact"
    """``"sampled"``: ``entropies[t]`` is the surprisal −log p(y_t), an unbiased estimate of the
    entropy, from a backend that returns only the sampled token's log-prob (verl's replicas)."""
    prompt_index: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.token_ids)
        if self.entropies is None:
            self.entropies, self.entropy_kind = [0.0] * n, "none"
        if len(self.logprobs) != n or len(self.entropies) != n:
            raise ValueError(
                f"Completion: {n} tokens but {len(self.logprobs)} logprobs and "
                f"{len(self.entropies)} entropies; backends must return one of each per token"
            )
        if self.finish_reason not in ("stop", "length", "eos"):
            raise ValueError(
                f"Completion.finish_reason {self.finish_reason!r} is not stop/length/eos"
            )


def validate_prompts(prompts: Sequence[Sequence[int]], vocab_size: int | None = None) -> None:
    """Raise a clear error unless ``prompts`` is a non-empty list of non-empty int id lists."""
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
        raise ConfigError(
            f"prompts must be a non-empty list of token-id lists, got {type(prompts).__name__}; "
            "tokenise with policy.tokenizer (or policy.encode_chat(messages)) first"
        )
    for i, p in enumerate(prompts):
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) == 0:
            raise ConfigError(
                f"prompt {i} must be a non-empty list of token ids, got {str(p)[:60]!r}; "
                "tokenise text with policy.tokenizer.encode(text) first"
            )
        bad = [t for t in p if not isinstance(t, int) or t < 0 or (vocab_size and t >= vocab_size)]
        if bad:
            raise ConfigError(
                f"prompt {i} has invalid token ids {bad[:5]} (vocab size {vocab_size}); "
                "use ids from this policy's tokenizer"
            )


@runtime_checkable
class TokenGenerator(Protocol):
    """Seam (a) of the rollout engine: batched token-in/token-out generation (docs/rollout.md).

    ``generate(prompts, params)`` continues every prompt (a list of exact token ids; nothing is
    re-tokenised) and returns ``len(prompts) * params.n`` :class:`Completion` objects,
    prompt-major. Each completion carries:

    - ``token_ids``: the generated ids exactly as sampled, the stop string's or EOS token included;
    - ``logprobs[t]``: log-prob of ``token_ids[t]`` under ``softmax(z_t / T)`` (see the module
      docstring); the trainer compares them with its own forward pass;
    - ``entropies[t]`` (or ``None`` when the backend has none), ``top_logprobs`` when
      ``params.logprobs_topk > 0`` (ARPO's top-k segment entropy reads them);
    - ``finish_reason``: ``"stop"`` (with ``stop_string``: the element of ``params.stop`` that the
      text now ends with), ``"eos"`` or ``"length"`` (``params.max_new_tokens`` reached).

    The tokenizer side: ``encode_chat(messages)`` gives the prompt ids (chat template, ending with
    the assistant header), ``encode(text)`` the ids of an env observation (no special tokens),
    ``decode(ids)`` the text sent to the env, ``vocab_size`` normalises segment entropies.
    """

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]: ...

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    @property
    def vocab_size(self) -> int: ...


@runtime_checkable
class AsyncTokenGenerator(Protocol):
    """:class:`TokenGenerator` with an ``async`` ``agenerate`` instead of ``generate`` (same
    arguments, same result), for servers that are driven from an event loop."""

    async def agenerate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]: ...

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    @property
    def vocab_size(self) -> int: ...


def generate_with(generator: Any, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
    """Call ``generator.generate``, or run ``generator.agenerate`` to completion when it only has
    the async form (in a private event loop; from a thread when this thread already runs one)."""
    sync = getattr(generator, "generate", None)
    if callable(sync):
        return sync(prompts, params)
    agen = getattr(generator, "agenerate", None)
    if not callable(agen):
        raise TypeError(
            f"{type(generator).__name__} is not a token generator: it has neither generate() nor "
            "agenerate(); see branchgym.agents.policy.TokenGenerator"
        )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(agen(prompts, params))
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["out"] = asyncio.run(agen(prompts, params))
        except BaseException as exc:  # re-raised in the caller's thread
            box["err"] = exc

    worker = threading.Thread(target=run, name="branchgym-agenerate")
    worker.start()
    worker.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


class Policy(abc.ABC):
    """Token ids in, token ids out, with per-token logprobs and entropies.

    Subclasses set ``tokenizer`` (a Hugging Face tokenizer) and implement :meth:`generate`.
    """

    tokenizer: Any
    name: str = "policy"
    concurrent_generate: bool = False
    """True when ``generate`` may run in several threads at once (an HTTP client); otherwise
    :meth:`agenerate` runs one call at a time."""

    @abc.abstractmethod
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """Continue every prompt; returns ``len(prompts) * params.n`` completions, prompt-major."""

    async def agenerate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """The async form of :meth:`generate` (same result): runs it in a worker thread, one call
        at a time unless ``concurrent_generate`` (a local model and its RNG are not shared)."""
        if self.concurrent_generate:
            return await asyncio.to_thread(self.generate, prompts, params)
        lock = self.__dict__.setdefault("_generate_lock", threading.Lock())

        def locked() -> list[Completion]:
            with lock:
                return self.generate(prompts, params)

        return await asyncio.to_thread(locked)

    @property
    def eos_token_ids(self) -> frozenset[int]:
        """Token ids that end generation (the tokenizer's EOS, e.g. ``<|im_end|>``)."""
        tok = self.tokenizer
        ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        return frozenset(ids)

    @property
    def vocab_size(self) -> int:
        """``len(tokenizer)`` (ARPO normalises entropies by ln of ``len(get_vocab())``)."""
        return len(self.tokenizer.get_vocab())

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of ``messages`` under the chat template, ending with the assistant header."""
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # some versions return BatchEncoding
            ids = ids["input_ids"]
        return [int(t) for t in ids]

    def encode(self, text: str) -> list[int]:
        """Token ids of a text fragment (an env observation), with no BOS/EOS added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with special tokens kept, so decode(ids) covers every id."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def close(self) -> None:  # noqa: B027 - optional hook; backends without resources keep it
        """Release engines/servers/clients; idempotent."""

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
