"""Issue 15: ``@value`` makes the same class as ``@dataclass(frozen=True, slots=True)``, with
an ``__init__`` that fills the slots directly. Each behaviour is checked against the plain
dataclass of the same fields."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime

import pytest

from shared.values import value

NOW = datetime(2024, 10, 1, tzinfo=UTC)


@value
class Fast:
    id: int
    at: datetime
    name: str = "till"
    tags: tuple[str, ...] = ()
    seen: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plain:
    id: int
    at: datetime
    name: str = "till"
    tags: tuple[str, ...] = ()
    seen: list[int] = field(default_factory=list)


@value
class Child(Fast):
    extra: int = 0


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1, NOW), {}),
        ((1, NOW, "shop"), {}),
        ((), {"id": 2, "at": NOW, "tags": ("a",)}),
        ((3,), {"at": NOW, "seen": [1, 2]}),
        ((4, NOW, "x", ("t",), [9]), {}),
    ],
)
def test_it_is_made_as_the_dataclass_is(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    fast, plain = Fast(*args, **kwargs), Plain(*args, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert repr(fast) == repr(plain).replace("Plain", "Fast")
    assert fast == Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert fast != Fast(99, NOW)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((1,), {}),
        ((1, NOW), {"nope": 1}),
        ((1, NOW, "a", (), [], 6), {}),
        ((1, NOW), {"id": 1}),
    ],
)
def test_wrong_arguments_are_refused_as_the_dataclass_refuses_them(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        Plain(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Fast(*args, **kwargs)  # type: ignore[arg-type]


@value
class Point:
    x: int
    y: int = 0


def test_it_hashes_as_the_dataclass_does() -> None:
    @dataclass(frozen=True, slots=True)
    class PlainPoint:
        x: int
        y: int = 0

    assert hash(Point(1, 2)) == hash(PlainPoint(1, 2)) == hash((1, 2))
    assert {Point(1), Point(1, 0), Point(2)} == {Point(1), Point(2)}


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    one, two = Fast(1, NOW), Fast(1, NOW)
    assert one.seen == [] and one.seen is not two.seen


def test_it_is_frozen_and_slotted() -> None:
    fast = Fast(1, NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.id = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del fast.name
    assert not hasattr(fast, "__dict__")
    assert Fast.__match_args__ == Plain.__match_args__


def test_replace_pickle_and_inheritance_work() -> None:
    fast = Fast(1, NOW, tags=("a",))
    assert dataclasses.replace(fast, name="b") == Fast(1, NOW, "b", ("a",))
    assert pickle.loads(pickle.dumps(fast)) == fast  # noqa: S301 - our own bytes
    child = Child(5, NOW, extra=7)
    assert (child.id, child.name, child.extra) == (5, "till", 7)
    assert dataclasses.replace(child, id=6).id == 6
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.extra = 1  # type: ignore[misc]


@value
class Checked:
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")


@value
class WithInitVar:
    total: int
    scale: InitVar[int] = 1


@value
class KeywordOnly:
    a: int
    b: int = field(kw_only=True)


@value
class NotInInit:
    a: int
    b: int = field(init=False, default=7)


def test_a_class_that_needs_more_keeps_the_dataclass_init() -> None:
    with pytest.raises(ValueError, match="low above high"):
        Checked(2, 1)
    assert Checked(1, 2).high == 2
    assert WithInitVar(3, 2).total == 3
    with pytest.raises(TypeError):
        KeywordOnly(1, 2)  # type: ignore[call-arg]
    assert KeywordOnly(1, b=2).b == 2
    assert NotInInit(1).b == 7
