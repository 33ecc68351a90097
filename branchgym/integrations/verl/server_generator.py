"""Seam (a) over verl's LLM server client: :class:`ServerGenerator` (docs/rollout.md).

verl's agent loops talk to the rollout replicas through one object, the worker's server client
(``verl.workers.rollout.llm_server.LLMServerClient`` in verl 0.9.1), whose coroutine
``generate(request_id, prompt_ids=..., sampling_params=...)`` returns a
``verl.workers.rollout.replica.TokenOutput`` (``token_ids``, ``log_probs``, ``stop_reason``,
``extra_fields``). :class:`ServerGenerator` turns it into branchgym's token generator, so that the
engine's one round loop (:func:`branchgym.agents.loop.run_round`) drives verl's replicas:

- prompts and completions are exact token ids (never text); each prompt of a round is one
  ``generate`` call, all of a round's calls run concurrently on the worker's event loop;
- the engine runs in a thread of its own (the agent loop keeps env steps, clones and tokenising
  off the event loop); :meth:`ServerGenerator.generate` hands each round's requests to the
  worker's loop and waits for them there, :meth:`ServerGenerator.agenerate` is the async form;
- stop strings go to the replica as vLLM's ``stop`` with ``include_stop_str_in_output``; a
  replica that runs past a stop string is cut at the token that completes it;
- **entropy**: verl's replicas return the log-prob of the sampled token only. With
  ``entropy="sampled"`` a token's entropy is estimated by its surprisal −log p(y_t), whose
  expectation under the sampling distribution is the exact entropy; the segment entropy the
  tree rule reads is then −Σ log p(y_t) over the segment's first ≤ 20 tokens over ln|V|, i.e.
  their mean surprisal times their count, normalised as ARPO's H_seg (docs/algorithms.md#arpo).
  With ``entropy="topk"`` the replica must return ``extra_fields["top_logprobs"]`` (one
  ``{token_id: logprob}`` dict per generated token, asked for with
  ``sampling_params["extra_args"]["top_logprobs"] = k``); entropies are then ARPO's truncated
  top-k entropies, exact over the returned tokens.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from branchgym.agents.entropy import topk_position_entropy
from branchgym.agents.policy import Completion, Policy, SamplingParams
from branchgym.agents.stopping import first_stop
from branchgym.errors import ConfigError

__all__ = ["ServerGenerator", "EntropyMode", "ENTROPY_KINDS", "verl_sampling_params"]

EntropyMode = Literal["sampled", "topk"]
ENTROPY_KINDS: dict[str, str] = {"sampled": "sampled_surprisal", "topk": "topk"}
"""What ``extra_fields["branchgym_entropy_kind"]`` says for each ``entropy`` setting."""


class GenerationAborted(RuntimeError):
    """The replica aborted a request (``stop_reason == "aborted"``, e.g. during a weight update)."""


def verl_sampling_params(params: SamplingParams, base: dict[str, Any], topk: int) -> dict[str, Any]:
    """The ``sampling_params`` dict verl's server client takes for one engine request.

    ``base`` is what the agent-loop worker passed to ``run`` (temperature, top_p, top_k,
    repetition_penalty, ...); the engine's own settings (token budget, stop strings) are added,
    and log-probs are always asked for (the trainer needs them; the entropy estimate reads them).
    """
    out = dict(base)
    out.update(
        temperature=params.temperature, top_p=params.top_p, top_k=params.top_k if params.top_k > 0 else -1,
        max_tokens=params.max_new_tokens, logprobs=True,
    )
    out.pop("max_new_tokens", None)
    if params.stop:
        out["stop"] = list(params.stop)
        out["include_stop_str_in_output"] = True
    if params.seed is not None:
        out["seed"] = params.seed
    if topk:
        out["extra_args"] = {**dict(out.get("extra_args") or {}), "top_logprobs": topk}
    return out


class ServerGenerator:
    """A :class:`~branchgym.agents.policy.TokenGenerator` (and ``AsyncTokenGenerator``) over
    verl's server client, for one agent-loop sample.

    Args:
        server: verl's server client (anything with an async ``generate(request_id, *,
            prompt_ids, sampling_params)`` returning a ``TokenOutput``).
        tokenizer: the worker's Hugging Face tokenizer (chat template, observations, decoding).
        loop: the worker's event loop, where every request is awaited.
        base_params: the sampling params verl passed to ``run``.
        entropy: ``"sampled"`` (surprisal of the sampled token) or ``"topk"`` (see module doc).
        topk: top-k log-probs asked of the replica when ``entropy == "topk"`` (ARPO: 10).
        chat_template_kwargs: extra arguments of ``apply_chat_template`` (verl's
            ``data.apply_chat_template_kwargs``).
    """

    def __init__(
        self,
        server: Any,
        tokenizer: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        base_params: dict[str, Any] | None = None,
        entropy: EntropyMode = "sampled",
        topk: int = 10,
        chat_template_kwargs: dict[str, Any] | None = None,
        request_prefix: str | None = None,
    ) -> None:
        if entropy not in ENTROPY_KINDS:
            raise ConfigError(f"entropy={entropy!r}; use 'sampled' (verl's replicas) or 'topk' "
                              "(a replica that returns extra_fields['top_logprobs']).")
        if entropy == "topk" and topk < 1:
            raise ConfigError(f"entropy='topk' needs topk >= 1, got {topk!r} (ARPO uses 10).")
        self.server = server
        self.tokenizer = tokenizer
        self.loop = loop
        self.base_params = dict(base_params or {})
        self.entropy = entropy
        self.topk = topk if entropy == "topk" else 0
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.request_prefix = request_prefix or uuid.uuid4().hex
        self._requests = itertools.count()
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_ids = frozenset({eos} if eos is not None else ())
        self.special_ids = frozenset(getattr(tokenizer, "all_special_ids", ()) or ())
        self.generated_tokens = 0
        self.preempted = 0

    # -- tokenizer side (the same conventions as every branchgym Policy) --------------------

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer.get_vocab())

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False, **self.chat_template_kwargs
        )
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return [int(t) for t in ids]

    def encode(self, text: str) -> list[int]:
        return Policy.encode(self, text)  # type: ignore[arg-type]

    def decode(self, ids: Sequence[int]) -> str:
        return Policy.decode(self, ids)  # type: ignore[arg-type]

    # -- generation ------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """Run a round's requests on the worker's loop and wait here (a thread off that loop)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("ServerGenerator.generate blocks: call it from a thread other than the "
                               "worker's event loop (the agent loop runs the engine in one), or await agenerate")
        return asyncio.run_coroutine_threadsafe(self._generate_all(prompts, params), self.loop).result()

    async def agenerate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        if asyncio.get_running_loop() is self.loop:
            return await self._generate_all(prompts, params)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._generate_all(prompts, params), self.loop))

    async def _generate_all(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        if params.n != 1:
            raise ConfigError(f"ServerGenerator samples one completion per prompt (n={params.n}).")
        sp = verl_sampling_params(params, self.base_params, self.topk)
        outs = await asyncio.gather(*(
            self.server.generate(f"{self.request_prefix}-{next(self._requests)}", prompt_ids=list(p),
                                 sampling_params=dict(sp))
            for p in prompts
        ))
        return [self._completion(o, params, i) for i, o in enumerate(outs)]

    def _completion(self, out: Any, params: SamplingParams, index: int) -> Completion:
        """A :class:`Completion` from one ``TokenOutput``: finish reason, entropies, stop cut."""
        if getattr(out, "stop_reason", None) == "aborted":
            raise GenerationAborted("the rollout replica aborted the request (stop_reason='aborted'); use "
                                    "verl's FullyAsyncLLMServerClient, which resumes aborted requests")
        ids = [int(t) for t in out.token_ids]
        logprobs = out.log_probs
        if logprobs is None or len(logprobs) != len(ids):
            raise ConfigError(
                f"the rollout replica returned {None if logprobs is None else len(logprobs)} log-probs for "
                f"{len(ids)} tokens; branchgym's agent loops need one per token (sampling_params logprobs=True)"
            )
        extra = getattr(out, "extra_fields", None) or {}
        top = extra.get("top_logprobs")
        if self.entropy == "topk":
            if top is None or len(top) != len(ids):
                raise ConfigError(
                    "entropy='topk' but the rollout replica returned no extra_fields['top_logprobs'] (one "
                    "{token_id: logprob} dict per token); verl's stock replicas return only the sampled "
                    "token's log-prob: set the agent loop's entropy='sampled'"
                )
            top = [{int(k): float(v) for k, v in pos.items()} for pos in top]
        else:
            top = None
        self.preempted += int(getattr(out, "num_preempted", None) or 0)
        finish: Literal["stop", "length", "eos"]
        stop_string = None
        hit = first_stop(self.decode(ids), params.stop) if params.stop else None
        if hit is not None:
            ids = ids[: self._stop_end(ids, params.stop)]
            finish, stop_string = "stop", hit[0]
        elif ids and (ids[-1] in self.eos_token_ids
                      or (len(ids) < params.max_new_tokens and ids[-1] in self.special_ids)):
            # the tokenizer's EOS, or another special token that ended generation early (the
            # model's generation config may list several, e.g. Qwen's <|endoftext|>)
            finish = "eos"
        else:
            finish = "length"
        n = len(ids)
        logprobs = [float(x) for x in logprobs[:n]]
        if top is not None:
            top = top[:n]
            entropies = [topk_position_entropy(pos) for pos in top]
        else:
            entropies = [-lp if math.isfinite(lp) else 0.0 for lp in logprobs]
        self.generated_tokens += n
        return Completion(
            token_ids=ids, logprobs=logprobs, entropies=entropies, text=self.decode(ids),
            finish_reason=finish, stop_string=stop_string, top_logprobs=top,
            entropy_kind="topk" if top is not None else "sampled", prompt_index=index,
        )

    def _stop_end(self, ids: list[int], stops: Sequence[str]) -> int:
        """Length of the shortest prefix of ``ids`` whose text contains a stop string."""
        if first_stop(self.decode(ids[:-1]), stops) is None:
            return len(ids)  # the usual case: the replica stopped at the completing token
        lo, hi = 1, len(ids) - 1  # the prefix of length hi contains a stop; find the shortest
        while lo < hi:
            mid = (lo + hi) // 2
            if first_stop(self.decode(ids[:mid]), stops) is None:
                lo = mid + 1
            else:
                hi = mid
        return hi
