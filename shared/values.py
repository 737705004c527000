"""Value objects that are cheap to make (issue 15).

``@value`` is ``@dataclass(frozen=True, slots=True)``: the same class in every way (fields,
defaults, ``dataclasses.replace``, equality, hashing, ``repr``, frozen once made) but for
one thing: its ``__init__`` fills the slots through their descriptors. The ``__init__`` that
``dataclass`` writes for a frozen class calls ``object.__setattr__`` once per field, which is
more than half the cost of making the object, and the till makes about 130 fields' worth of
them per redemption (a bill, its record, a context with ten vouchers...). A class whose
``__init__`` would need more (``__post_init__``, ``InitVar``, keyword-only or ``init=False``
fields) keeps the one ``dataclass`` writes.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def value(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True, slots=True)`` with a cheaper ``__init__`` (see the module)."""
    made = dataclasses.dataclass(frozen=True, slots=True)(cls)
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    params = list(inspect.signature(made.__init__).parameters.values())[1:]
    plain = (
        not hasattr(made, "__post_init__")
        and all(f.init for f in fields)
        and [p.name for p in params] == [f.name for f in fields]  # no InitVar
        and all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)  # no keyword-only field
    )
    if plain:
        made.__init__ = _slot_init(made, fields)  # type: ignore[method-assign]
    return made


_NO_VALUE: Any = object()  # an argument not given, for a field with a default factory


def _slot_init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Any:
    """``def __init__(self, a, b=<default>, c=<factory>)`` setting each slot by its
    descriptor's ``__set__``, written as ``dataclass`` writes its own."""
    scope: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    params: list[str] = []
    lines: list[str] = []
    for n, f in enumerate(fields):
        scope[f"_set{n}"] = getattr(cls, f.name).__set__  # the slot's member descriptor
        if f.default is not dataclasses.MISSING:
            scope[f"_default{n}"] = f.default
            params.append(f"{f.name}=_default{n}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_factory{n}"] = f.default_factory
            params.append(f"{f.name}=_NO_VALUE")
            lines.append(f"    if {f.name} is _NO_VALUE: {f.name} = _factory{n}()")
        else:
            params.append(f.name)
        lines.append(f"    _set{n}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(lines) or "    pass")
    exec(source, scope)  # noqa: S102 - our own source, made of the class's field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init
