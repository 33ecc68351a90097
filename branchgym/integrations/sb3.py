"""Stable-Baselines3 adapters: text observations as a bytes ``Box``, a menu of text actions as ``Discrete``.

SB3's algorithms read numpy observations and ``Discrete``/``Box`` actions, while branchgym's
envs speak text (``Text`` spaces). Two thin wrappers bridge them without touching the env:

- :class:`DiscreteActions` turns an index into an action string. A menu entry is either a fixed
  string or a function of the last observation text, so a small policy can learn *which* tool
  call to make while the function writes *how* (``"search the number in the question"``).
- :class:`BytesObservation` encodes the observation as its UTF-8 bytes, zero-padded or cut to a
  fixed length, in a ``Box(0, 255, (length,), uint8)``.

:func:`make_sb3_env` stacks them in that order (actions need the text observation). Both keep
the Gymnasium contract, so ``branchgym.envs.clone`` and SB3's ``check_env`` work on the stack.

>>> from branchgym.algorithms.quickstart_task import make_lookup_env
>>> env = make_sb3_env(make_lookup_env("smoke"), ["<search>1</search>", "<answer>\\\\boxed{0}</answer>"], length=64)
>>> obs, info = env.reset(seed=0)
>>> obs.dtype, obs.shape, env.action_space
(dtype('uint8'), (64,), Discrete(2))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from branchgym.errors import ConfigError, InvalidAction

__all__ = ["BytesObservation", "DiscreteActions", "make_sb3_env", "decode_bytes"]

ActionChoice = str | Callable[[str], str]


class DiscreteActions(gym.Wrapper):
    """``Discrete(len(actions))`` over a menu of action strings (or functions of the last observation).

    ``info["action_text"]`` holds the string sent to the env. An index outside the menu raises
    :class:`~branchgym.errors.InvalidAction` naming the valid range (SB3 never sends one).
    """

    def __init__(self, env: gym.Env, actions: Sequence[ActionChoice]) -> None:
        super().__init__(env)
        if not actions:
            raise ConfigError("DiscreteActions needs at least one action (a string or a function of the observation).")
        for i, a in enumerate(actions):
            if not (isinstance(a, str) or callable(a)):
                raise ConfigError(f"actions[{i}]={a!r} must be a string or a callable(obs_text) -> str.")
        self.actions = tuple(actions)
        self.action_space = gym.spaces.Discrete(len(self.actions))
        self._last_obs = ""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._last_obs = obs
        return obs, info

    def action_text(self, action: int) -> str:
        """The string that index ``action`` sends given the last observation."""
        try:
            i = int(action)
        except (TypeError, ValueError):
            raise InvalidAction(f"action {action!r} is not an integer index into {len(self.actions)} choices.") from None
        if not 0 <= i < len(self.actions):
            raise InvalidAction(f"action {i} is outside the menu [0, {len(self.actions) - 1}].")
        choice = self.actions[i]
        text = choice if isinstance(choice, str) else choice(self._last_obs)
        if not isinstance(text, str):
            raise ConfigError(f"actions[{i}] returned {type(text).__name__}; a menu function must return a str.")
        return text

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        text = self.action_text(action)
        obs, reward, terminated, truncated, info = self.env.step(text)
        self._last_obs = obs
        info = {**info, "action_text": text}
        return obs, reward, terminated, truncated, info


class BytesObservation(gym.ObservationWrapper):
    """The text observation as ``length`` UTF-8 bytes (``uint8``), zero-padded.

    ``keep="head"`` keeps the first ``length`` bytes of a longer text, ``"tail"`` the last ones
    (where a transcript's newest part is). Bytes are not normalised: SB3 scales only image
    spaces, and an MLP handles 0..255 inputs (divide in a feature extractor if you prefer).
    """

    def __init__(self, env: gym.Env, length: int = 512, keep: Literal["head", "tail"] = "head") -> None:
        super().__init__(env)
        if not isinstance(length, int) or length < 1:
            raise ConfigError(f"length={length!r} must be an int ≥ 1 (bytes per observation).")
        if keep not in ("head", "tail"):
            raise ConfigError(f"keep={keep!r}; use 'head' or 'tail'.")
        self.length = length
        self.keep = keep
        self.observation_space = gym.spaces.Box(0, 255, shape=(length,), dtype=np.uint8)

    def observation(self, observation: str) -> np.ndarray:
        raw = observation.encode("utf-8")
        raw = raw[: self.length] if self.keep == "head" else raw[-self.length :]
        out = np.zeros(self.length, dtype=np.uint8)
        out[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        return out


def decode_bytes(obs: np.ndarray) -> str:
    """The text of a :class:`BytesObservation` array (padding dropped; a cut character replaced)."""
    return bytes(np.asarray(obs, dtype=np.uint8)).rstrip(b"\0").decode("utf-8", errors="replace")


def make_sb3_env(env: gym.Env | str, actions: Sequence[ActionChoice], *, length: int = 512,
                 keep: Literal["head", "tail"] = "head", **make_kwargs: Any) -> gym.Env:
    """``BytesObservation(DiscreteActions(env, actions))``; ``env`` may be a registered id."""
    if isinstance(env, str):
        env = gym.make(env, **make_kwargs)
    elif make_kwargs:
        raise ConfigError(f"make_sb3_env got keyword arguments {sorted(make_kwargs)} with an env instance; "
                          "pass them to gym.make yourself or pass an env id.")
    return BytesObservation(DiscreteActions(env, actions), length=length, keep=keep)
