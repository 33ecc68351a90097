"""branchgym envs as SkyRL-gym text envs (``pip install 'branchgym[skyrl]'``; docs/integrations/skyrl.md).

:class:`BranchgymTextEnv` is a ``skyrl_gym.envs.base_text_env.BaseTextEnv`` with SkyRL's
``(env_config, extras)`` constructor around one branchgym env:

- ``env_config`` (a dict or OmegaConf ``DictConfig``; SkyRL passes ``environment.skyrl_gym.
  <env_class>``) names the env: ``env`` (a Gymnasium id or ``"module:factory"``) and
  ``env_kwargs``;
- ``extras`` is the dataset row's ``env_extras``: ``task_id`` picks the task (else the env draws
  one, seeded by ``seed``); ``env``/``env_kwargs`` there override the config per row.

``init(prompt)`` resets the env and returns the env's own chat (system prompt with the tool
protocol, then the question): the env renders the prompt, the dataset row only names the task.
``step(action)`` sends the model's text to ``env.step`` and returns SkyRL's
``BaseTextEnvStepOutput``: the observation as a user message, the env reward, ``done`` when the
env terminated or truncated, and a small ``metadata`` (tool, invalid action, truncation reason,
final metrics).

Registration: every branchgym Gymnasium id is registered with skyrl_gym as
``"branchgym/<id>"`` (``skyrl_gym.make("branchgym/WebSearch-Offline-v0", env_config=...,
extras=...)``), plus ``"branchgym"``, whose env comes from ``env_config``. skyrl_gym has no
plugin mechanism; branchgym's import hook (``branchgym-gymnasium.pth``, installed with the
wheel) registers them as soon as ``skyrl_gym.envs`` is imported, so nothing needs importing by
hand; ``import branchgym.integrations.skyrl`` registers them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"branchgym.integrations.skyrl needs skyrl-gym: pip install 'branchgym[skyrl]' ({e})") from e

from branchgym.errors import ConfigError
from branchgym.integrations.envspec import branchgym_env_ids, build_env

__all__ = ["BranchgymTextEnv", "register_skyrl_envs", "ID_PREFIX"]

ID_PREFIX = "branchgym/"
_INFO_KEYS = ("tool", "invalid_action", "invalid_reason", "truncation_reason", "turn", "answer", "metrics")


def _as_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, Mapping):
        return dict(cfg)
    try:  # an OmegaConf DictConfig
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except Exception:
        raise ConfigError(f"env_config={cfg!r} must be a mapping (dict or DictConfig) with 'env' and 'env_kwargs'.") from None


class BranchgymTextEnv(BaseTextEnv):
    """A branchgym env behind SkyRL-gym's ``init`` / ``step`` / ``close`` (see the module docstring).

    Args:
        env_config: ``{"env": id or "module:factory", "env_kwargs": {...}}``.
        extras: the row's ``env_extras``: ``task_id``, ``seed``, or ``env``/``env_kwargs``.
        env: set by the ``"branchgym/<id>"`` registrations; overridden by the config or extras.
    """

    def __init__(self, env_config: Any = None, extras: Mapping[str, Any] | None = None, *, env: str | None = None) -> None:
        super().__init__()
        cfg, row = _as_dict(env_config), dict(extras or {})
        name = row.get("env") or cfg.get("env") or env
        if not name:
            raise ConfigError(
                "BranchgymTextEnv needs an env: make 'branchgym/<id>' (e.g. 'branchgym/WebSearch-Offline-v0'), "
                "or set env_config.env / extras['env'] to a Gymnasium id or 'module:factory'."
            )
        kwargs = {**_as_dict(cfg.get("env_kwargs")), **_as_dict(row.get("env_kwargs"))}
        self.env = build_env(name, kwargs)
        self.task_id = row.get("task_id")
        self.seed = row.get("seed")
        self.max_turns = int(getattr(self.env.unwrapped, "max_turns", 1))
        self._info: dict[str, Any] = {}
        self._reward = 0.0

    def init(self, prompt: Any = None) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Reset the env on the row's task; the first messages are the env's own chat."""
        options = {"task_id": str(self.task_id)} if self.task_id is not None else None
        _, info = self.env.reset(seed=self.seed, options=options)
        self.turns, self._reward, self._info = 0, 0.0, {}
        messages = [{"role": m["role"], "content": m["content"]} for m in info.get("messages", [])]
        if not messages:
            raise ConfigError(f"{self.env!r} returned no info['messages'] from reset(); it is not a branchgym ToolEnv.")
        task = info.get("task") or {}
        return messages, {"task_id": task.get("id", self.task_id)}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """One model turn: ``env.step(action)``; the observation comes back as a user message."""
        self.turns += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._reward += float(reward)
        self._info = info
        observations = [{"role": "user", "content": obs}] if obs else []
        metadata = {k: info[k] for k in _INFO_KEYS if k in info}
        return BaseTextEnvStepOutput(observations=observations, reward=float(reward),
                                     done=bool(terminated or truncated), metadata=metadata)

    def get_metrics(self) -> dict[str, Any]:
        """The episode's return, turns and the env's final scores (``info["metrics"]``)."""
        out: dict[str, Any] = {"return": self._reward, "turns": self.turns}
        for k, v in (self._info.get("metrics") or {}).items():
            if isinstance(v, (int, float, bool)):
                out[k] = float(v)
        return out

    def close(self) -> None:
        """Close the env (its sandbox sessions). Idempotent."""
        self.env.close()


def register_skyrl_envs() -> None:
    """Register ``"branchgym"`` and ``"branchgym/<id>"`` for every branchgym id. Idempotent."""
    from skyrl_gym.envs.registration import register, registry

    entry = f"{__name__}:BranchgymTextEnv"
    if "branchgym" not in registry:
        register(id="branchgym", entry_point=entry)
    for env_id in branchgym_env_ids():
        if ID_PREFIX + env_id not in registry:
            register(id=ID_PREFIX + env_id, entry_point=entry, kwargs={"env": env_id})


register_skyrl_envs()
