"""``ServerGenerator``: verl's ``TokenOutput`` as branchgym completions (finish reasons, a stop
string the replica ran past, log-probs, the entropy estimate) and where its calls may run."""

from __future__ import annotations

import asyncio

import pytest

from branchgym.agents.policy import SamplingParams
from branchgym.integrations.verl.server_generator import ServerGenerator, verl_sampling_params


def _complete(server, tokenizer, prompt, params, *, threaded=False):
    async def go():
        loop = asyncio.get_running_loop()
        gen = ServerGenerator(server, tokenizer, loop, base_params={"repetition_penalty": 1.0})
        if threaded:  # the agent loop's way: the engine in a thread, requests on the loop
            return await loop.run_in_executor(None, gen.generate, [prompt], params)
        return await gen.agenerate([prompt], params)

    return asyncio.run(go())[0]


@pytest.fixture
def prompt(tokenizer):
    return tokenizer.apply_chat_template([{"role": "user", "content": "find item 7"}], add_generation_prompt=True,
                                         tokenize=True, return_dict=False)


@pytest.mark.parametrize("threaded", [False, True])
def test_replica_past_the_stop_string_is_cut_at_the_completing_token(server_factory, tokenizer, prompt,
                                                                     threaded) -> None:
    server = server_factory(script=lambda context: "<search>item 7</search> and then more text")
    params = SamplingParams(max_new_tokens=64, stop=("</search>", "</answer>"))
    c = _complete(server, tokenizer, prompt, params, threaded=threaded)
    full = server.returned[0]
    assert c.finish_reason == "stop" and c.stop_string == "</search>"
    assert c.token_ids == full[: len(c.token_ids)] and len(c.token_ids) < len(full)
    assert tokenizer.decode(c.token_ids).endswith("</search>")
    assert "</search>" not in tokenizer.decode(c.token_ids[:-1])
    assert c.logprobs == pytest.approx(server.score(prompt, full)[: len(c.token_ids)])
    assert c.entropies == pytest.approx([-lp for lp in c.logprobs]) and c.entropy_kind == "sampled"


def test_eos_and_length_finishes(server_factory, tokenizer, prompt) -> None:
    eos = tokenizer.eos_token
    c = _complete(server_factory(script=lambda context: f"no tool here{eos}"), tokenizer, prompt,
                  SamplingParams(max_new_tokens=32, stop=("</search>",)))
    assert c.finish_reason == "eos" and c.token_ids[-1] == tokenizer.eos_token_id
    c = _complete(server_factory(script=lambda context: "still thinking"), tokenizer, prompt,
                  SamplingParams(max_new_tokens=32, stop=("</search>",)))
    assert c.finish_reason == "length" and c.stop_string is None


def test_sampling_params_sent_to_verl() -> None:
    p = SamplingParams(max_new_tokens=40, temperature=0.7, top_p=0.9, stop=("</python>",))
    sp = verl_sampling_params(p, {"temperature": 1.0, "repetition_penalty": 1.0, "logprobs": False}, topk=0)
    assert sp == {"temperature": 0.7, "top_p": 0.9, "top_k": -1, "max_tokens": 40, "logprobs": True,
                  "repetition_penalty": 1.0, "stop": ["</python>"], "include_stop_str_in_output": True}
    assert verl_sampling_params(p, {}, topk=10)["extra_args"] == {"top_logprobs": 10}


def test_generate_on_the_loop_thread_is_refused(server_factory, tokenizer, prompt) -> None:
    async def go():
        gen = ServerGenerator(server_factory(), tokenizer, asyncio.get_running_loop())
        gen.generate([prompt], SamplingParams(max_new_tokens=4))

    with pytest.raises(RuntimeError, match="call it from a thread other than the worker's event loop"):
        asyncio.run(go())
