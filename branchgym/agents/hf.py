"""``HFPolicy``: a transformers causal LM as a token-in/token-out policy, and the trainable one.

Generation is our own batched sampling loop over the model's KV cache (left-padded prompts), so
every generated token comes with its exact logprob and the exact entropy of
``softmax(z / T)`` from the logits, and stop strings are checked on the decoded tokens.
:meth:`HFPolicy.forward_logprobs` is the differentiable forward the trainer uses; on the same
token ids it returns the rollout logprobs (the token-in/token-out invariant, tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchgym.agents.entropy import entropy_from_logits
from branchgym.agents.policy import Completion, Policy, SamplingParams, validate_prompts
from branchgym.agents.stopping import StopChecker
from branchgym.errors import ConfigError, PolicyError

if TYPE_CHECKING:
    import torch

__all__ = ["HFPolicy", "filter_logprobs"]


def filter_logprobs(logp: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to ``-inf`` the tokens outside the top-k and outside the top-p nucleus.

    Nucleus: keep the smallest set of most likely tokens whose mass reaches ``top_p`` (Holtzman
    et al. 2020, arXiv:1904.09751); the most likely token is always kept. Shapes: (B, V) -> (B, V).
    """
    import torch

    if top_k > 0 and top_k < logp.shape[-1]:
        kth = torch.topk(logp, top_k, dim=-1).values[..., -1:]
        logp = logp.masked_fill(logp < kth, float("-inf"))
    if top_p < 1.0:
        sorted_lp, idx = torch.sort(logp, dim=-1, descending=True)
        mass_before = sorted_lp.exp().cumsum(dim=-1) - sorted_lp.exp()
        drop_sorted = mass_before >= top_p  # the first token has mass_before 0: always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
        logp = logp.masked_fill(drop, float("-inf"))
    return logp


class HFPolicy(Policy):
    """A Hugging Face causal LM (path or loaded model) on CPU or CUDA.

    Args:
        model: a directory/hub id for ``AutoModelForCausalLM.from_pretrained`` or a loaded model.
        tokenizer: a tokenizer or its path; defaults to the model's path.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"auto"`` (float32 on CPU, bfloat16 on CUDA), or a torch dtype name.
        max_batch_size: sequences per forward pass during generation.
        seed: seeds the sampling generator used when ``SamplingParams.seed`` is None.
    """

    name = "hf"

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size!r}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} but torch sees no CUDA device; use device='cpu'")
        self.device = torch.device(device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ConfigError(f"dtype {dtype!r} is not a torch dtype; use 'float32' or 'bfloat16'")
        if isinstance(model, (str, Path)):
            path = str(model)
            try:
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
            except OSError as e:
                raise PolicyError(
                    f"cannot load a causal LM from {path!r}: {e}. Give a directory written by "
                    "save_pretrained (e.g. `branchgym tiny build PATH`) or a cached hub id"
                ) from e
            tokenizer = tokenizer if tokenizer is not None else path
        if tokenizer is None:
            tokenizer = getattr(model, "name_or_path", None) or getattr(
                model.config, "_name_or_path", None
            )
            if not tokenizer:
                raise ConfigError(
                    "a loaded model needs tokenizer=...; pass the tokenizer or its path"
                )
        if isinstance(tokenizer, (str, Path)):
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self._generator = torch.Generator(device=self.device).manual_seed(seed)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else tokenizer.eos_token_id

    @property
    def eos_token_ids(self) -> frozenset[int]:
        ids = set(super().eos_token_ids)
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif gen_eos:
            ids.update(gen_eos)
        return frozenset(ids)

    # -- generation -------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """Continue each prompt; ``len(prompts) * params.n`` completions, prompt-major."""
        import torch

        validate_prompts(prompts, vocab_size=self.model.config.vocab_size)
        expanded = [(i, list(p)) for i, p in enumerate(prompts) for _ in range(params.n)]
        gen = self._generator
        if params.seed is not None:
            gen = torch.Generator(device=self.device).manual_seed(params.seed)
        was_training = self.model.training
        self.model.eval()
        out: list[Completion] = []
        try:
            with torch.no_grad():
                for s in range(0, len(expanded), self.max_batch_size):
                    chunk = expanded[s : s + self.max_batch_size]
                    out.extend(self._generate_batch(chunk, params, gen))
        finally:
            self.model.train(was_training)
        return out

    def _generate_batch(
        self, batch: list[tuple[int, list[int]]], params: SamplingParams, gen: torch.Generator
    ) -> list[Completion]:
        import torch

        b = len(batch)
        width = max(len(p) for _, p in batch)
        ids = torch.full((b, width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, width), dtype=torch.long)
        for r, (_, p) in enumerate(batch):  # left padding keeps every row's last token aligned
            ids[r, width - len(p) :] = torch.tensor(p)
            mask[r, width - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :]
        last_pos = pos[:, -1]

        eos = torch.tensor(sorted(self.eos_token_ids), device=self.device, dtype=torch.long)
        temp, k = params.logprob_temperature, params.logprobs_topk
        tokens: list[list[int]] = [[] for _ in range(b)]
        logps: list[list[float]] = [[] for _ in range(b)]
        ents: list[list[float]] = [[] for _ in range(b)]
        tops: list[list[dict[int, float]]] = [[] for _ in range(b)]
        finish: list[str | None] = [None] * b
        stop_str: list[str | None] = [None] * b
        checker = StopChecker(params.stop, self.decode)
        done = torch.zeros(b, dtype=torch.bool, device=self.device)

        for step in range(params.max_new_tokens):
            z = logits.float()
            logp_all = torch.log_softmax(z / temp, dim=-1)
            ent = entropy_from_logits(z, temp)
            if params.greedy:
                nxt = z.argmax(dim=-1)
            else:
                filt = filter_logprobs(logp_all, top_k=params.top_k, top_p=params.top_p)
                nxt = torch.multinomial(filt.exp(), 1, generator=gen).squeeze(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_token_id), nxt)
            chosen = logp_all.gather(-1, nxt[:, None]).squeeze(-1)
            if k:
                top_v, top_i = torch.topk(logp_all, min(k, logp_all.shape[-1]), dim=-1)
                top_v, top_i = top_v.tolist(), top_i.tolist()
            is_eos = torch.isin(nxt, eos)
            nxt_l, chosen_l, ent_l, eos_l = (
                nxt.tolist(),
                chosen.tolist(),
                ent.tolist(),
                is_eos.tolist(),
            )
            done_l = done.tolist()
            for r in range(b):
                if done_l[r]:
                    continue
                tokens[r].append(nxt_l[r])
                logps[r].append(chosen_l[r])
                ents[r].append(ent_l[r])
                if k:
                    d = dict(zip(top_i[r], top_v[r], strict=False))
                    d.setdefault(nxt_l[r], chosen_l[r])  # vLLM adds the sampled token too
                    tops[r].append(d)
                if eos_l[r]:
                    finish[r] = "eos"
                elif params.stop and (hit := checker.check(tokens[r])) is not None:
                    finish[r], stop_str[r] = "stop", hit
            done = torch.tensor([f is not None for f in finish], device=self.device)
            if bool(done.all()) or step == params.max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=self.device)], -1)
            last_pos = last_pos + 1
            out = self.model(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=last_pos[:, None],
                past_key_values=past,
                use_cache=True,
            )
            past, logits = out.past_key_values, out.logits[:, -1, :]

        return [
            Completion(
                token_ids=tokens[r],
                logprobs=logps[r],
                entropies=ents[r],
                text=self.decode(tokens[r][:-1] if finish[r] == "eos" else tokens[r]),
                finish_reason=finish[r] or "length",  # type: ignore[arg-type]
                stop_string=stop_str[r],
                top_logprobs=tops[r] if k else None,
                entropy_kind="exact",
                prompt_index=batch[r][0],
            )
            for r in range(b)
        ]

    # -- training ---------------------------------------------------------------------------

    def forward_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        temperature: float = 1.0,
        with_entropy: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Differentiable per-token ``logp`` and entropy of given sequences.

        ``logp[:, t] = log softmax(z_{t-1} / T)[input_ids[:, t]]`` and ``entropy[:, t]`` is the
        entropy of that distribution (docs/algorithms.md#entropy), for t >= 1; column 0 (no
        context) is 0.
        Shapes: (B, L) -> (B, L), (B, L). Padding may be on either side; positions come from the
        mask, as during generation, so rollout logprobs are reproduced.
        """
        import torch

        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0 for logprobs, got {temperature!r}")
        input_ids = input_ids.to(self.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(self.device)
        pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=pos
        ).logits
        z = logits[:, :-1].float()
        logp = torch.log_softmax(z / temperature, -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
        zero = torch.zeros_like(logp[:, :1])
        logp = torch.cat([zero, logp], dim=1)
        if not with_entropy:
            return logp, None
        return logp, torch.cat([zero, entropy_from_logits(z, temperature)], dim=1)

    def sequence_logprobs(
        self, sequences: Sequence[Sequence[int]], *, temperature: float = 1.0
    ) -> tuple[list[list[float]], list[list[float]]]:
        """No-grad :meth:`forward_logprobs` over ragged id lists (right-padded), as lists."""
        import torch

        validate_prompts(sequences, vocab_size=self.model.config.vocab_size)
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, s in enumerate(sequences):
            ids[r, : len(s)] = torch.tensor(list(s))
            mask[r, : len(s)] = 1
        with torch.no_grad():
            logp, ent = self.forward_logprobs(ids, mask, temperature=temperature)
        assert ent is not None
        return (
            [logp[r, : len(s)].tolist() for r, s in enumerate(sequences)],
            [ent[r, : len(s)].tolist() for r, s in enumerate(sequences)],
        )

    def state_dict(self) -> dict[str, Any]:
        """The model's weights (what ``VLLMPolicy.load_weights`` takes)."""
        return self.model.state_dict()
