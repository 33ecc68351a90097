"""branchgym.fields: one typed, ranged field mechanism for every config."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pytest

from branchgym.errors import ConfigError
from branchgym.fields import build, ranged, validate


@dataclass(frozen=True)
class Inner:
    k: int = ranged(1, ge=1)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class Opt:
    lr: float = ranged(1e-3, gt=0.0, hint="1e-3 is usual")
    steps: int = ranged(10, ge=1, le=100)
    threads: int | None = ranged(None, ge=1)
    mode: Literal["a", "b"] = "a"
    name: str = ranged("x", choices=("x", "y"))
    flag: bool = False
    inner: Inner | None = None
    extra: dict = ranged(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)


def test_values_are_normalised_to_their_declared_types() -> None:
    o = Opt(lr=1, inner={"k": 3})
    assert type(o.lr) is float and o.lr == 1.0
    assert o.inner == Inner(k=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": "abc"}, "Opt.lr='abc' must be a finite number > 0; 1e-3 is usual."),
        ({"lr": math.inf}, "Opt.lr=inf must be a finite number > 0; 1e-3 is usual."),
        ({"lr": True}, "Opt.lr=True must be a finite number > 0; 1e-3 is usual."),
        ({"steps": 0}, "Opt.steps=0 must be an int in [1, 100]."),
        ({"steps": 5.0}, "Opt.steps=5.0 must be an int in [1, 100]."),
        ({"threads": 0}, "Opt.threads=0 must be an int ≥ 1 or null."),
        ({"mode": "c"}, "Opt.mode='c' must be one of 'a', 'b'."),
        ({"name": "xx"}, "Opt.name='xx' must be one of ['x', 'y']. Did you mean 'x'?"),
        ({"flag": 1}, "Opt.flag=1 must be true or false."),
        ({"inner": 5}, "Opt.inner=5 must be an Inner or a mapping of its fields or null."),
        ({"extra": [1]}, "Opt.extra=[1] must be a mapping of names to values."),
    ],
)
def test_each_bad_value_gets_one_line_naming_field_value_and_range(kwargs, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Opt(**kwargs)
    assert str(e.value) == message


def test_long_values_are_cut_and_nested_errors_say_where() -> None:
    with pytest.raises(ConfigError) as e:
        Opt(name="z" * 10_000)
    assert len(str(e.value)) < 200 and "(10002 chars)" in str(e.value)
    with pytest.raises(ConfigError, match=r"^Opt.inner: Inner.k=0 must be an int ≥ 1\.$"):
        build(Opt, {"inner": {"k": 0}})
    with pytest.raises(ConfigError, match=r"^Opt.inner: unknown key 'kk'.*Did you mean 'k'\? Allowed: \['k'\]\.$"):
        build(Opt, {"inner": {"kk": 0}})
