"""``OpenAIPolicy``: any OpenAI-compatible completions server as a token-in/token-out policy.

Sends prompt token ids to ``POST {base_url}/completions`` (the legacy completions endpoint
accepts a list of ids as the prompt) and reads back generated token ids and logprobs.
With ``server="vllm"`` (default) it also asks for vLLM's extensions that make the exchange
exact: ``return_token_ids``, ``return_tokens_as_token_ids``, ``include_stop_str_in_output``,
``skip_special_tokens=False`` and ``top_k``. A server that returns no token ids gets its text
tokenised locally (``Completion.meta["exact_tokens"]`` is then False). For evaluation; training
needs a backend whose weights it can update (HF, vLLM).

Entropies are ARPO's truncated top-k form over the returned top logprobs (``entropy_kind
"topk"``), or ``"none"`` (zeros) when the server returns no logprobs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from branchgym.agents.entropy import topk_position_entropy
from branchgym.agents.policy import Completion, Policy, SamplingParams, validate_prompts
from branchgym.errors import ConfigError, PolicyError

__all__ = ["OpenAIPolicy"]

_ID_PREFIX = "token_id:"


def _token_key(key: str, tokenizer: Any) -> int:
    """A top-logprobs key as a token id (``"token_id:17"`` from vLLM, else the token string)."""
    if key.startswith(_ID_PREFIX):
        return int(key[len(_ID_PREFIX) :])
    tid = tokenizer.convert_tokens_to_ids(key)
    return int(tid) if tid is not None else -1


def _top(d: dict[int, float], k: int, sampled: int) -> dict[int, float]:
    """The k largest entries plus the sampled token (vLLM's convention)."""
    out = dict(sorted(d.items(), key=lambda kv: -kv[1])[:k])
    out[sampled] = d[sampled]
    return out


class OpenAIPolicy(Policy):
    """A policy behind an OpenAI-compatible HTTP server.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000/v1"``.
        model: the model name the server serves.
        tokenizer: the model's tokenizer (object or path) for chat templates and decoding;
            defaults to ``model`` when it is a local directory.
        api_key: sent as a bearer token; defaults to ``$OPENAI_API_KEY`` (none if unset).
        server: ``"vllm"`` adds vLLM's exact-token extensions; ``"openai"`` sends only the
            standard fields.
        timeout_s: HTTP timeout per request.
        max_topk: the most top logprobs to request (OpenAI allows 5; vLLM its ``max_logprobs``).
    """

    name = "openai"
    concurrent_generate = True  # one HTTP request per call; the server batches concurrent ones

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any = None,
        *,
        api_key: str | None = None,
        server: str = "vllm",
        timeout_s: float = 300.0,
        max_topk: int = 20,
    ) -> None:
        import httpx

        if server not in ("vllm", "openai"):
            raise ConfigError(f"server={server!r}; use 'vllm' (exact token ids) or 'openai'")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url={base_url!r} must start with http:// or https://")
        if tokenizer is None:
            if not Path(model).is_dir():
                raise ConfigError(
                    f"OpenAIPolicy needs the model's tokenizer: pass tokenizer=PATH (model "
                    f"{model!r} is not a local directory)"
                )
            tokenizer = model
        if isinstance(tokenizer, (str, Path)):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        self.tokenizer = tokenizer
        self.model = model
        self.server = server
        self.max_topk = max_topk
        self.base_url = base_url.rstrip("/")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def _body(self, prompts: list[list[int]], params: SamplingParams) -> dict[str, Any]:
        k = min(max(params.logprobs_topk, 10 if self.server == "vllm" else 5), self.max_topk)
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": [list(p) for p in prompts],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": params.n,
            "logprobs": k,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if self.server == "vllm":
            body.update(
                top_k=params.top_k,
                include_stop_str_in_output=True,
                skip_special_tokens=False,
                spaces_between_special_tokens=False,
                return_token_ids=True,
                return_tokens_as_token_ids=True,
            )
        elif params.top_k:
            raise ConfigError("top_k is not an OpenAI API parameter; use server='vllm' or top_k=0")
        return body

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        """Continue each prompt; ``len(prompts) * params.n`` completions, prompt-major."""
        import httpx

        validate_prompts(prompts, vocab_size=len(self.tokenizer))
        try:
            r = self._client.post("/completions", json=self._body(prompts, params))
        except httpx.HTTPError as e:
            raise PolicyError(
                f"cannot reach {self.base_url}/completions: {e}. Is the server running?"
            ) from e
        if r.status_code != 200:
            raise PolicyError(
                f"{self.base_url}/completions answered {r.status_code}: {r.text[:500]}"
            )
        choices = sorted(r.json()["choices"], key=lambda c: c["index"])
        if len(choices) != len(prompts) * params.n:
            raise PolicyError(
                f"server returned {len(choices)} choices for {len(prompts)} prompts x n={params.n}"
            )
        return [self._completion(i // params.n, c, params) for i, c in enumerate(choices)]

    def _completion(
        self, prompt_index: int, c: dict[str, Any], params: SamplingParams
    ) -> Completion:
        lp = c.get("logprobs") or {}
        ids = c.get("token_ids")
        exact = ids is not None
        if ids is None and lp.get("tokens") and all(t.startswith(_ID_PREFIX) for t in lp["tokens"]):
            ids, exact = [int(t[len(_ID_PREFIX) :]) for t in lp["tokens"]], True
        if ids is None:
            ids = self.encode(c["text"])
        ids = [int(t) for t in ids]
        token_lps = lp.get("token_logprobs") or []
        top_raw = lp.get("top_logprobs") or []
        if len(token_lps) == len(ids):
            logps = [float(x) if x is not None else 0.0 for x in token_lps]
        else:
            logps = [0.0] * len(ids)
        tops: list[dict[int, float]] = []
        ents: list[float] = []
        if len(top_raw) == len(ids):
            for tok, chosen, pos in zip(ids, logps, top_raw, strict=False):
                d = {_token_key(k, self.tokenizer): float(v) for k, v in (pos or {}).items()}
                d.setdefault(tok, chosen)
                tops.append(d)
                ents.append(topk_position_entropy(d))
            kind = "topk"
        else:
            ents, kind = [0.0] * len(ids), "none"
        finish_raw, stop_reason = c.get("finish_reason"), c.get("stop_reason")
        if finish_raw == "length":
            finish, stop = "length", None
        elif isinstance(stop_reason, str):
            finish, stop = "stop", stop_reason
        elif finish_raw == "stop" and ids and ids[-1] in self.eos_token_ids:
            finish, stop = "eos", None
        elif finish_raw == "stop" and params.stop:
            # A standard server strips the stop string and does not say which one matched.
            finish, stop = "stop", None
        else:
            finish, stop = "eos", None
        text_ids = ids[:-1] if finish == "eos" and ids and ids[-1] in self.eos_token_ids else ids
        k = params.logprobs_topk
        return Completion(
            token_ids=ids,
            logprobs=logps,
            entropies=ents,
            text=self.decode(text_ids),
            finish_reason=finish,  # type: ignore[arg-type]
            stop_string=stop,
            top_logprobs=[_top(d, k, t) for d, t in zip(tops, ids, strict=False)]
            if k and tops
            else None,
            entropy_kind=kind,  # type: ignore[arg-type]
            prompt_index=prompt_index,
            meta={"exact_tokens": exact},
        )

    def close(self) -> None:
        self._client.close()
