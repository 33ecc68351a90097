"""An OpenAI-compatible chat-completions client for the LLM judge.

``ChatClient(base_url, model)`` is a ``(prompt) -> reply`` callable: one user message, no system
prompt (as ARPO's judge sends it), ``POST {base_url}/chat/completions``, the reply is
``choices[0].message.content``. :func:`make_judge` wraps it in the scoring package's
:class:`~branchgym.envs.scoring.judge.LLMJudge`, which applies ARPO's prompt and decision rule
(docs/benchmarks.md#evaluating-a-model) and falls back to ``is_equiv`` when the endpoint keeps
failing.

Any server that speaks the chat-completions shape works: vLLM, SGLang, llama.cpp, TGI, or a
hosted API (key from ``OPENAI_API_KEY`` or ``api_key=``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from branchgym.envs.web.retry import RetryPolicy, is_retryable_status, retry_after_seconds
from branchgym.errors import ConfigError, FetchError

__all__ = ["ChatClient", "make_judge"]


class ChatClient:
    """``client(prompt) -> reply`` against ``{base_url}/chat/completions``.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8001/v1``.
        model: the served model name (ARPO's judge: ``Qwen2.5-72B-Instruct``).
        api_key: bearer token (default ``$OPENAI_API_KEY``; none sent when unset).
        temperature, max_tokens: sampling settings sent with each request (``None``: omitted,
            so the server's defaults apply, as in ARPO's judge).
        timeout_s: per-request timeout.
        retry: retries on 429/5xx/transport errors with backoff.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None,
                 timeout_s: float = 60.0, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"judge base_url must be an http(s) URL such as "
                              f"http://127.0.0.1:8001/v1, got {base_url!r}")
        if not model:
            raise ConfigError("judge model name is empty; pass the name the server serves")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy(attempts=3)
        self._delay = self.retry.delays()
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_s)

    def __call__(self, prompt: str) -> str:
        body: dict[str, Any] = {"model": self.model,
                                "messages": [{"role": "user", "content": prompt}]}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        last = ""
        for attempt in range(self.retry.attempts):
            wait: float | None = None
            try:
                resp = self._client.post(self.url, json=body, headers=self.headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    try:
                        return str(resp.json()["choices"][0]["message"]["content"] or "")
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        raise FetchError(
                            f"judge endpoint {self.url} did not answer in the chat-completions "
                            f"shape (choices[0].message.content): {resp.text[:200]!r}"
                        ) from exc
                if not is_retryable_status(resp.status_code):
                    raise FetchError(f"judge endpoint {self.url} answered HTTP "
                                     f"{resp.status_code}: {resp.text[:200]!r}")
                last = f"HTTP {resp.status_code}"
                wait = retry_after_seconds(resp.headers.get("retry-after"),
                                           cap_s=self.retry.cap_s)
            if attempt + 1 < self.retry.attempts:
                self._sleep(self._delay(attempt) if wait is None else wait)
        raise FetchError(f"judge endpoint {self.url} failed {self.retry.attempts} times ({last})")

    def close(self) -> None:
        self._client.close()


def make_judge(base_url: str, model: str, *, retries: int = 3, **kwargs: Any) -> Any:
    """An ARPO-rule :class:`~branchgym.envs.scoring.judge.LLMJudge` over a chat endpoint."""
    from branchgym.envs.scoring.judge import LLMJudge

    # The client retries transient failures with backoff; LLMJudge then falls back to is_equiv.
    kwargs.setdefault("retry", RetryPolicy(attempts=retries))
    return LLMJudge(ChatClient(base_url, model, **kwargs), retries=1)
