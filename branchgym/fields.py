"""Typed, ranged dataclass fields, checked once when a config is built.

A field's type is its annotation and its range sits next to it::

    @dataclass(frozen=True)
    class Opt:
        lr: float = ranged(1e-6, gt=0, hint="ARPO/AEPO use 1e-6")
        steps: int = ranged(10, ge=1)
        threads: int | None = ranged(None, ge=1)

        def __post_init__(self) -> None:
            validate(self)

:func:`validate` checks every field against its annotation (``int``, ``float``, ``bool``,
``str``, ``Literal[...]``, ``X | None``, ``dict[str, ...]``, a nested config dataclass, which may
be given as a mapping) and its range, and raises one :class:`~branchgym.errors.ConfigError` line
that names the field, the value and what is allowed::

    Opt.lr='abc' must be a finite number > 0; ARPO/AEPO use 1e-6.

Numbers are never silently wrong: ``float`` fields refuse ``inf``/``nan`` and ``bool`` (an ``int``
is accepted and stored as a float); ``int`` fields refuse ``bool`` and floats.
:func:`check_keywords` applies the same checks to a mapping of keyword arguments of a function
(the ``advantage_params`` / ``loss_params`` of the registered estimators and losses).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Union

from branchgym.errors import ConfigError

__all__ = ["Spec", "ranged", "validate", "build", "check_value", "check_keywords"]

_MISSING: Any = dataclasses.MISSING
_INT64 = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a field allows beyond its type: a numeric range, a set of choices, a predicate."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | Callable[[], Iterable[Any]] | None = None
    """allowed values, or a function returning them (a registry, read when checked)."""
    check: Callable[[Any], bool] | None = None
    """extra predicate on a value of the right type; ``allowed`` describes it."""
    allowed: str = ""
    hint: str = ""
    """appended after the allowed range (a typical value, the fix)."""

    def options(self) -> tuple[Any, ...] | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)


def ranged(default: Any = _MISSING, *, default_factory: Any = _MISSING, **spec: Any) -> Any:
    """A dataclass field whose value :func:`validate` checks against ``Spec(**spec)``."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"spec": Spec(**spec)})


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _short(value: Any) -> str:
    text = repr(value)
    quote = "'" if isinstance(value, str) else ""
    return text if len(text) <= 80 else text[:60] + f"...{quote} ({len(text)} chars)"


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _range_text(spec: Spec) -> str:
    lo = ("[", spec.ge) if spec.ge is not None else ("(", spec.gt) if spec.gt is not None else None
    hi = ("]", spec.le) if spec.le is not None else (")", spec.lt) if spec.lt is not None else None
    if lo and hi:
        return f" in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo:
        return f" {'≥' if lo[0] == '[' else '>'} {_num(lo[1])}"
    if hi:
        return f" {'≤' if hi[0] == ']' else '<'} {_num(hi[1])}"
    return ""


def _describe(tp: Any, spec: Spec) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(_describe(a, spec) for a in arms)
        return text + (" or null" if len(arms) < len(typing.get_args(tp)) else "")
    if origin is Literal:
        args = typing.get_args(tp)
        return repr(args[0]) if len(args) == 1 else "one of " + ", ".join(repr(a) for a in args)
    if tp is bool:
        return "true or false"
    if tp is int or tp is float:
        extra = f" ({spec.allowed})" if spec.allowed else ""
        return ("an int" if tp is int else "a finite number") + _range_text(spec) + extra
    if tp is str:
        options = spec.options()
        if options is not None:
            return f"one of {sorted(options)}"
        return spec.allowed or "a string"
    if tp is dict or origin in (dict, Mapping):
        return "a mapping of names to values"
    if dataclasses.is_dataclass(tp):
        article = "an" if tp.__name__[:1] in "AEIOU" else "a"
        return f"{article} {tp.__name__} or a mapping of its fields"
    return getattr(tp, "__name__", str(tp))


def _conform(tp: Any, value: Any, spec: Spec, where: str) -> tuple[bool, Any]:
    """(value has type ``tp`` and is in range, the value as stored)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin in (Union, types.UnionType):
        for arm in typing.get_args(tp):
            ok, v = _conform(arm, value, spec, where)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(tp)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int or tp is float:
        if isinstance(value, bool) or not isinstance(value, int if tp is int else (int, float)):
            return False, value
        if isinstance(value, int) and abs(value) > _INT64:  # float() overflows; torch takes int64
            return False, value
        v = float(value) if tp is float else value
        if tp is float and not math.isfinite(v):
            return False, value
        ok = ((spec.ge is None or v >= spec.ge) and (spec.gt is None or v > spec.gt)
              and (spec.le is None or v <= spec.le) and (spec.lt is None or v < spec.lt))
        return ok and (spec.check is None or spec.check(v)), v
    if tp is str:
        if not isinstance(value, str):
            return False, value
        options = spec.options()
        ok = (options is None or value in options) and (spec.check is None or spec.check(value))
        return ok, value
    if tp is dict or origin in (dict, Mapping):
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value), dict(value) \
            if isinstance(value, Mapping) else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return True, value
        if isinstance(value, Mapping):
            return True, build(tp, value, where)
        return False, value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def check_value(where: str, tp: Any, value: Any, spec: Spec | None = None) -> Any:
    """``value`` if it has type ``tp`` and lies in ``spec`` (converted: int → float), else a
    :class:`ConfigError` naming ``where`` (e.g. ``TrainConfig.lr``), the value and what is allowed."""
    spec = spec or Spec()
    ok, v = _conform(tp, value, spec, where)
    if not ok:
        big = isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64
        msg = f"{where}={_short(value)} must be {_describe(tp, spec)}" + (", below 2**63" if big else "")
        msg += f"; {spec.hint}." if spec.hint else "."
        options = spec.options()
        close = difflib.get_close_matches(value, [str(o) for o in options], n=1) \
            if isinstance(value, str) and options else []
        raise ConfigError(msg + (f" Did you mean {close[0]!r}?" if close else ""))
    return v


def validate(obj: Any, owner: str | None = None) -> None:
    """Check every field of the dataclass ``obj`` (call it first in ``__post_init__``).

    Values are normalised in place (an int in a float field becomes a float, a mapping in a
    nested-config field becomes that config), so a frozen config holds exactly its declared types.
    """
    cls = type(obj)
    owner = owner or cls.__name__
    hints = _hints(cls)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        v = check_value(f"{owner}.{f.name}", hints.get(f.name, Any), value, f.metadata.get("spec"))
        if v is not value:
            object.__setattr__(obj, f.name, v)


def _unknown(where: str, key: str, allowed: Iterable[str], what: str) -> ConfigError:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}: {what}.{hint} Allowed: {allowed}.")


def build(cls: type, data: Mapping[str, Any], where: str | None = None) -> Any:
    """``cls(**data)`` for a config dataclass, with an unknown key or a bad value named in one line
    prefixed by ``where`` (e.g. ``TrainConfig.branching``)."""
    where = where or cls.__name__
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            raise _unknown(where, key, names, f"{cls.__name__} has no such field")
    try:
        return cls(**data)
    except ConfigError as e:
        if where == cls.__name__:
            raise
        raise ConfigError(f"{where}: {e}") from None


def check_keywords(
    where: str, fn: Callable[..., Any], label: str, params: Any, specs: Mapping[str, Spec] | None = None,
    *, by_position: bool = False, also: Iterable[str] = (),
) -> dict[str, Any]:
    """Validate ``params`` against the keyword-only parameters of ``fn`` (names and annotated
    types), and ranges from ``specs`` (by parameter name); returns the converted mapping.

    ``where`` names the config entry (``TrainConfig.loss_params``) and ``label`` the function
    (``policy loss 'ppo_clip' (branchgym.algorithms.losses.ppo:ppo_clip)``). ``by_position``
    also allows the positional-or-keyword parameters (a constructor's), ``also`` extra names.
    """
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}={_short(params)} must be a mapping of {label}'s keyword arguments.")
    sig = inspect.signature(fn)
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) if by_position \
        else (inspect.Parameter.KEYWORD_ONLY,)
    kw: dict[str, Any] = {name: None for name in also}
    kw.update({p.name: p for p in sig.parameters.values() if p.kind in kinds and p.name != "self"})
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations (a user's function): check the names only
        hints = {}
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in kw:
            if open_ended:
                out[key] = value
                continue
            raise _unknown(f"{where}.{key}={_short(value)}", key, kw, f"{label} takes no such keyword argument")
        out[key] = check_value(f"{where}.{key}", hints.get(key, Any), value, (specs or {}).get(key))
    return out
