"""The judge's OpenAI-compatible client against a loopback server speaking chat completions,
and ARPO's decision rule end to end."""

from __future__ import annotations

import re

import pytest

from branchgym.envs.web.judge_client import ChatClient, make_judge
from branchgym.envs.web.loopback import LoopbackServer, Reply, Request
from branchgym.envs.web.retry import RetryPolicy
from branchgym.errors import ConfigError, FetchError


def completion(content: str, model: str) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 3, "total_tokens": 53}}


# What the fake judge model says, keyed by the predicted answer in the prompt.
REPLIES = {
    "Varnholt": "The prediction is correct.",
    "Lunde": "Incorrect",
    "roughly 1887": "The prediction is not entirely correct.",  # ARPO's rule: counts as correct
    "Brisemont": "<judgment>Correct</judgment> but the wording is wrong elsewhere",
    "Caspary": "Wrong.",
}


def chat_route(req: Request) -> Reply:
    body = req.json()
    prompt = body["messages"][0]["content"]
    pred = re.search(r"Predicted Answer: (.*)\n", prompt).group(1)
    return Reply(200, completion(REPLIES.get(pred, "Incorrect"), body["model"]))


@pytest.fixture()
def judge_server():
    with LoopbackServer({"/v1/chat/completions": chat_route}) as srv:
        yield srv


def test_request_has_the_chat_completions_shape(judge_server, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-judge")
    client = ChatClient(judge_server.url("/v1"), "Qwen2.5-72B-Instruct", temperature=0.0)
    assert client("Predicted Answer: Varnholt\n") == "The prediction is correct."
    req = judge_server.requests[0]
    assert req.path == "/v1/chat/completions" and req.headers["authorization"] == "Bearer sk-judge"
    body = req.json()
    assert body == {"model": "Qwen2.5-72B-Instruct", "temperature": 0.0,
                    "messages": [{"role": "user", "content": "Predicted Answer: Varnholt\n"}]}


@pytest.mark.parametrize(("pred", "gold", "expected"), [
    ("Varnholt", "Varnholt lighthouse", True),
    ("Lunde", "Sabel", False),
    ("roughly 1887", "1887", True),
    ("Brisemont", "Oskar Brisemont", True),
    ("Caspary", "Quessary", False),
    ("\\frac{1}{2}", "0.5", True),  # the judge said Incorrect, but is_equiv holds
    ("", "anything", False),  # empty predictions are never sent
])
def test_arpo_decision_rule_through_the_endpoint(judge_server, pred, gold, expected) -> None:
    judge = make_judge(judge_server.url("/v1"), "judge-model")
    assert judge("Which lighthouse?", pred, gold) is expected
    sent = [r.json()["messages"][0]["content"] for r in judge_server.requests]
    if pred:
        assert sent[0].startswith("Given a Question and its Golden Answer, verify whether")
        assert f"Golden Answer: {gold}\n" in sent[0]
    else:
        assert sent == []


def test_list_gold_is_printed_as_a_python_list(judge_server) -> None:
    make_judge(judge_server.url("/v1"), "m")("q", "Varnholt", ["Varnholt", "Varnholt light"])
    assert "Golden Answer: ['Varnholt', 'Varnholt light']" in judge_server.requests[0].json()[
        "messages"][0]["content"]


def test_outage_retries_then_falls_back_to_math_equivalence() -> None:
    waits: list[float] = []
    with LoopbackServer({"/v1/chat/completions": lambda r: Reply(503, "down", "text/plain")}) as srv:
        judge = make_judge(srv.url("/v1"), "m", sleep=waits.append,
                           retry=RetryPolicy(attempts=3, base_s=0.0, cap_s=0.0))
        assert judge("q", "\\frac{1}{2}", "0.5") is True
        assert judge("q", "Lunde", "Sabel") is False
        assert len(srv.requests) == 6 and judge.failures == 2


def test_wrong_shape_and_bad_config_are_clear() -> None:
    with LoopbackServer({"/v1/chat/completions": lambda r: Reply(200, {"text": "hi"})}) as srv:
        with pytest.raises(FetchError, match="choices\\[0\\].message.content"):
            ChatClient(srv.url("/v1"), "m")("hello")
    with pytest.raises(ConfigError, match="http://127.0.0.1:8001/v1"):
        ChatClient("localhost:8001", "m")
