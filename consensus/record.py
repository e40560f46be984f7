"""Typed records that encode as msgpack arrays in a fixed field order.

A record class is a frozen dataclass whose fields each carry a *kind* (see
:func:`wire`). The kind says what the field may hold and how it maps to the
wire. Constructing a record validates every field, so a record object is
always valid; decoding goes through the constructor, so a decoded record is
valid too. Every error is a :class:`FieldError` naming the failing field by
its path (``tx.payload.parents[3]``).

Sequences are held as tuples so records are immutable and hashable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from consensus import codec

R = TypeVar("R", bound="Record")


class FieldError(ValueError):
    """A field of a record is missing, of the wrong type or out of range."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class Kind:
    """What one field may hold. Subclasses override ``check`` and maybe ``to_wire``."""

    def check(self, value: Any, path: str) -> Any:
        """Return the field value for ``value`` (decoded or given), or raise FieldError."""
        raise NotImplementedError

    def to_wire(self, value: Any) -> Any:
        return value


INT_FIELD_MAX = 2**63 - 1
"""The largest value an ``Int`` field takes unless it says otherwise."""


class Int(Kind):
    def __init__(self, lo: int = 0, hi: int = INT_FIELD_MAX) -> None:
        self.lo, self.hi = lo, hi

    def check(self, value: Any, path: str) -> int:
        if type(value) is not int:
            raise FieldError(path, f"expected an integer, got {_type_name(value)}")
        if not self.lo <= value <= self.hi:
            raise FieldError(path, f"{value} is outside {self.lo}..{self.hi}")
        return value


class Bool(Kind):
    def check(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise FieldError(path, f"expected true or false, got {_type_name(value)}")
        return value


class Float(Kind):
    """A finite float (only where a record explicitly allows one)."""

    def check(self, value: Any, path: str) -> float:
        if type(value) is not float:
            raise FieldError(path, f"expected a float, got {_type_name(value)}")
        if not math.isfinite(value):
            raise FieldError(path, f"float must be finite, got {value!r}")
        return value


class Bytes(Kind):
    def __init__(self, size: int | None = None, max_len: int = 1 << 20) -> None:
        self.size, self.max_len = size, max_len

    def check(self, value: Any, path: str) -> bytes:
        if type(value) is not bytes:
            raise FieldError(path, f"expected bytes, got {_type_name(value)}")
        if self.size is not None and len(value) != self.size:
            raise FieldError(path, f"expected {self.size} bytes, got {len(value)}")
        if len(value) > self.max_len:
            raise FieldError(path, f"{len(value)} bytes exceeds the limit of {self.max_len}")
        return value


class Str(Kind):
    def __init__(self, max_len: int = 256, pattern: str | None = None, hint: str = "") -> None:
        self.max_len = max_len
        self.pattern = re.compile(pattern) if pattern else None
        self.hint = hint

    def check(self, value: Any, path: str) -> str:
        if type(value) is not str:
            raise FieldError(path, f"expected a string, got {_type_name(value)}")
        if len(value.encode()) > self.max_len:
            raise FieldError(path, f"longer than {self.max_len} bytes")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise FieldError(path, f"{value!r} is not {self.hint or self.pattern.pattern}")
        return value


class OneOf(Kind):
    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def check(self, value: Any, path: str) -> str:
        if value not in self.choices or type(value) is not str:
            raise FieldError(path, f"{value!r} is not one of {', '.join(self.choices)}")
        return value


class Optional(Kind):
    def __init__(self, inner: Kind) -> None:
        self.inner = inner

    def check(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.check(value, path)

    def to_wire(self, value: Any) -> Any:
        return None if value is None else self.inner.to_wire(value)


class Seq(Kind):
    """A list on the wire, a tuple in the record; optionally unique and sorted."""

    def __init__(self, item: Kind, max_items: int = 1024, *, sorted_unique: bool = False) -> None:
        self.item, self.max_items, self.sorted_unique = item, max_items, sorted_unique

    def check(self, value: Any, path: str) -> tuple:
        if type(value) not in (list, tuple):
            raise FieldError(path, f"expected a list, got {_type_name(value)}")
        if len(value) > self.max_items:
            raise FieldError(path, f"{len(value)} items exceeds the limit of {self.max_items}")
        out = tuple(self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value))
        if self.sorted_unique:
            for i in range(1, len(out)):
                if not _sort_key(out[i - 1]) < _sort_key(out[i]):
                    raise FieldError(f"{path}[{i}]", "items must be sorted and unique")
        return out

    def to_wire(self, value: Any) -> list:
        return [self.item.to_wire(v) for v in value]


def _sort_key(value: Any) -> Any:
    if isinstance(value, Record):
        return value.encode()
    return value


class Pairs(Kind):
    """A string-keyed map, held as a tuple of (key, value) sorted by key; no duplicates."""

    def __init__(self, key: Str, value: Kind, max_items: int = 64) -> None:
        self.key, self.value, self.max_items = key, value, max_items

    def check(self, value: Any, path: str) -> tuple:
        if isinstance(value, Mapping):
            value = sorted(value.items())
        if type(value) not in (list, tuple):
            raise FieldError(
                path, f"expected a list of [key, value] pairs, got {_type_name(value)}"
            )
        if len(value) > self.max_items:
            raise FieldError(path, f"{len(value)} entries exceeds the limit of {self.max_items}")
        out = []
        for i, pair in enumerate(value):
            if type(pair) not in (list, tuple) or len(pair) != 2:
                raise FieldError(f"{path}[{i}]", "expected a [key, value] pair")
            k = self.key.check(pair[0], f"{path}[{i}].key")
            if out and not out[-1][0] < k:
                raise FieldError(f"{path}[{i}].key", f"{k!r} is duplicated or out of order")
            out.append((k, self.value.check(pair[1], f"{path}.{k}")))
        return tuple(out)

    def to_wire(self, value: Any) -> list:
        return [[k, self.value.to_wire(v)] for k, v in value]


class Value(Kind):
    """Any codec value without maps or floats (contract arguments, results, event data)."""

    def __init__(self, max_bytes: int = 64 * 1024) -> None:
        self.max_bytes = max_bytes

    def check(self, value: Any, path: str) -> Any:
        try:
            size = len(codec.encode(value))
        except codec.CodecError as exc:
            raise FieldError(path, str(exc)) from None
        if size > self.max_bytes:
            raise FieldError(path, f"{size} bytes exceeds the limit of {self.max_bytes}")
        return freeze_value(value)

    def to_wire(self, value: Any) -> Any:
        return _thaw(value)


def freeze_value(value: Any) -> Any:
    """A ``Value`` field's held form: lists (nested too) as tuples."""
    t = type(value)
    if t is not list and t is not tuple:
        return value
    # Scalars are taken as they are, not by a call each: most items are scalars.
    return tuple([freeze_value(v) if type(v) is list or type(v) is tuple else v for v in value])


def _thaw(value: Any) -> Any:
    if type(value) is tuple:
        return [_thaw(v) for v in value]
    return value


class Nested(Kind):
    def __init__(self, cls: type[Record]) -> None:
        self.cls = cls

    def check(self, value: Any, path: str) -> Record:
        if isinstance(value, self.cls):
            return value
        return self.cls.from_wire(value, path)

    def to_wire(self, value: Any) -> list:
        return value.to_wire()


class Tagged(Kind):
    """A record whose class is chosen by an earlier string field (``tag``) of the same record."""

    def __init__(self, tag: str, classes: Mapping[str, type[Record]]) -> None:
        self.tag, self.classes = tag, classes

    def check_tagged(self, value: Any, path: str, tag_value: str) -> Record:
        cls = self.classes.get(tag_value)
        if cls is None:
            raise FieldError(path, f"no payload type for {self.tag} {tag_value!r}")
        if isinstance(value, Record) and not isinstance(value, cls):
            raise FieldError(path, f"a {type(value).__name__} does not belong to {tag_value!r}")
        return Nested(cls).check(value, path)

    def check(self, value: Any, path: str) -> Any:
        raise AssertionError("Tagged fields are checked by Record with their tag")

    def to_wire(self, value: Any) -> list:
        return value.to_wire()


def wire(kind: Kind, **kwargs: Any) -> Any:
    """Declare a record field with its kind: ``height: int = wire(Int())``."""
    return dataclasses.field(metadata={"kind": kind}, **kwargs)


class Record:
    """Base class of array-encoded records; subclasses are ``@dataclass(frozen=True)``."""

    NAME: ClassVar[str] = ""
    MAX_BYTES: ClassVar[int] = codec.MAX_MESSAGE_BYTES
    _schema: ClassVar[tuple[tuple[str, Kind], ...]]

    @classmethod
    def schema(cls) -> tuple[tuple[str, Kind], ...]:
        schema = cls.__dict__.get("_schema")
        if schema is None:
            schema = tuple((f.name, f.metadata["kind"]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            cls._schema = schema
        return schema

    @classmethod
    def _path(cls) -> str:
        return cls.NAME or cls.__name__.lower()

    def __post_init__(self) -> None:
        self._validate(self._path())

    def _validate(self, path: str) -> None:
        for name, kind in self.schema():
            value = getattr(self, name)
            if isinstance(kind, Tagged):
                checked = kind.check_tagged(value, f"{path}.{name}", getattr(self, kind.tag))
            else:
                checked = kind.check(value, f"{path}.{name}")
            if checked is not value:
                object.__setattr__(self, name, checked)
        self.check_invariants(path)

    def check_invariants(self, path: str) -> None:
        """Cross-field rules; override and raise FieldError."""

    def to_wire(self) -> list:
        return [kind.to_wire(getattr(self, name)) for name, kind in self.schema()]

    @classmethod
    def from_wire(cls: type[R], value: Any, path: str | None = None) -> R:
        path = path or cls._path()
        schema = cls.schema()
        if type(value) is not list and type(value) is not tuple:
            raise FieldError(
                path, f"expected an array of {len(schema)} fields, got {_type_name(value)}"
            )
        if len(value) != len(schema):
            raise FieldError(path, f"expected {len(schema)} fields, got {len(value)}")
        obj = cls.__new__(cls)
        for (name, _), item in zip(schema, value, strict=True):
            object.__setattr__(obj, name, item)
        obj._validate(path)
        return obj

    def encode(self) -> bytes:
        """The canonical encoding, computed once per object (records are immutable: frozen,
        their sequences tuples), since roots, stores and hashes each ask for it."""
        cached = self.__dict__.get("_record_bytes")
        if cached is None:
            cached = codec.encode(self.to_wire(), allow_float=self._allows_float())
            self.__dict__["_record_bytes"] = cached
        return cached

    @classmethod
    def _allows_float(cls) -> bool:
        return _contains_float(cls)

    @classmethod
    def decode(cls: type[R], data: bytes, *, max_size: int | None = None) -> R:
        """Decode canonical bytes; raise codec.CodecError or FieldError on any fault."""
        value = codec.decode(
            data, max_size=max_size or cls.MAX_BYTES, allow_float=cls._allows_float()
        )
        return cls.from_wire(value)

    def hash(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()


def _contains_float(cls: type[Record], seen: frozenset[type] = frozenset()) -> bool:
    cached = cls.__dict__.get("_has_float")
    if cached is not None:
        return cached
    if cls in seen:
        return False
    seen = seen | {cls}

    def kind_has_float(kind: Kind) -> bool:
        if isinstance(kind, Float):
            return True
        if isinstance(kind, Optional):
            return kind_has_float(kind.inner)
        if isinstance(kind, Seq):
            return kind_has_float(kind.item)
        if isinstance(kind, Pairs):
            return kind_has_float(kind.value)
        if isinstance(kind, Nested):
            return _contains_float(kind.cls, seen)
        if isinstance(kind, Tagged):
            return any(_contains_float(c, seen) for c in kind.classes.values())
        return False

    result = any(kind_has_float(k) for _, k in cls.schema())
    cls._has_float = result  # type: ignore[attr-defined]
    return result
