"""Methods a contract may call on values, each metered before CPython does the work.

Every implementation takes the running machine (for gas and limits), the
receiver and the arguments. Where the result's size is known beforehand it
is charged first; the rest delegates to CPython's own method so results and
errors are exactly CPython's. A (type, name) pair missing from
:data:`METHODS` is an AttributeError at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from vm.errors import ExecutionError
from vm.gas import OBJECT_OVERHEAD_BYTES, SLOT_BYTES, SLOTS_MOVED_PER_GAS
from vm.values import SEQUENCE_TYPES, is_intlike, type_name


class Meter(Protocol):
    """The part of the interpreter's machine that methods use."""

    def charge(self, amount: int) -> None: ...
    def alloc(self, nbytes: int) -> None: ...
    def alloc_str(self, length: int) -> None: ...
    def alloc_items(self, count: int, slots: int = 1) -> None: ...
    def grow(self, new_len: int, new_slots: int) -> None: ...
    def visit(self, *values: Any) -> None: ...
    def lookup(self, k: Any) -> Any: ...
    def key(self, k: Any) -> Any: ...


def _m_append(m: Meter, recv: list[Any], x: Any) -> None:
    m.grow(len(recv) + 1, 1)
    recv.append(x)


def _m_extend(m: Meter, recv: list[Any], x: Any) -> None:
    if type(x) not in SEQUENCE_TYPES:
        raise ExecutionError("TypeError", f"'{type_name(x)}' object is not iterable")
    m.grow(len(recv) + len(x), len(x))
    recv.extend(x)


def _m_insert(m: Meter, recv: list[Any], i: Any, x: Any) -> None:
    if not is_intlike(i):
        raise ExecutionError("TypeError", "list indices must be integers")
    m.grow(len(recv) + 1, 1)
    m.charge(len(recv) // SLOTS_MOVED_PER_GAS)
    recv.insert(i, x)


def _m_list_pop(m: Meter, recv: list[Any], *args: Any) -> Any:
    if args and not is_intlike(args[0]):
        raise ExecutionError("TypeError", "list indices must be integers")
    if args:
        m.charge(len(recv) // SLOTS_MOVED_PER_GAS)
    return recv.pop(*args)


def _m_scan(method: str) -> Callable[..., Any]:
    """Methods that allocate nothing but may walk, compare or search their receiver and args."""

    def impl(m: Meter, recv: Any, *args: Any) -> Any:
        m.visit(recv, *args)
        return getattr(recv, method)(*args)

    return impl


def _m_copy(m: Meter, recv: Any) -> Any:
    m.alloc_items(len(recv), 2 if type(recv) is dict else 1)
    return recv.copy()


def _m_dict_get(m: Meter, recv: dict[Any, Any], k: Any, default: Any = None) -> Any:
    return recv.get(m.lookup(k), default)


def _m_dict_pop(m: Meter, recv: dict[Any, Any], k: Any, *default: Any) -> Any:
    return recv.pop(m.lookup(k), *default)


def _m_setdefault(m: Meter, recv: dict[Any, Any], k: Any, default: Any = None) -> Any:
    if m.key(k) not in recv:
        m.grow(len(recv) + 1, 2)
    return recv.setdefault(k, default)


def _m_update(m: Meter, recv: dict[Any, Any], other: Any) -> None:
    if type(other) is not dict:
        raise ExecutionError("TypeError", "dict.update() needs a dict")
    m.visit(other)
    m.grow(len(recv) + len(other), 2 * len(other))
    recv.update(other)


def _m_keys(m: Meter, recv: dict[Any, Any]) -> list[Any]:
    m.alloc_items(len(recv))
    return list(recv)


def _m_values(m: Meter, recv: dict[Any, Any]) -> list[Any]:
    m.alloc_items(len(recv))
    return list(recv.values())


def _m_items(m: Meter, recv: dict[Any, Any]) -> list[Any]:
    m.alloc_items(len(recv))
    m.alloc(len(recv) * (OBJECT_OVERHEAD_BYTES + 2 * SLOT_BYTES))
    return list(recv.items())


def _m_split(m: Meter, recv: Any, *sep: Any) -> list[Any]:
    parts = recv.split(*sep)
    m.alloc_items(len(parts))
    m.alloc_str(len(recv))
    return parts


def _m_join(m: Meter, recv: Any, items: Any) -> Any:
    if type(items) not in SEQUENCE_TYPES:
        return recv.join(items)  # CPython raises its TypeError
    parts = list(items)
    m.alloc_items(len(parts))
    if all(type(p) is type(recv) for p in parts):
        m.alloc_str(sum(len(p) for p in parts) + len(recv) * max(len(parts) - 1, 0))
    return recv.join(parts)


def _m_grow(method: str, factor: int) -> Callable[..., Any]:
    """Methods whose result is at most ``factor`` times the receiver's length."""

    def impl(m: Meter, recv: Any) -> Any:
        m.alloc_str(factor * len(recv))
        return getattr(recv, method)()

    return impl


def _m_replace(m: Meter, recv: Any, old: Any, new: Any) -> Any:
    if type(old) is not type(recv) or type(new) is not type(recv):
        raise ExecutionError("TypeError", f"replace() arguments must be {type_name(recv)}")
    count = recv.count(old) if old else len(recv) + 1
    m.alloc_str(len(recv) + count * max(len(new) - len(old), 0))
    return recv.replace(old, new)


def _m_hex(m: Meter, recv: bytes) -> str:
    m.alloc_str(2 * len(recv))
    return recv.hex()


METHODS: dict[tuple[type, str], Callable[..., Any]] = {
    (list, "append"): _m_append,
    (list, "extend"): _m_extend,
    (list, "insert"): _m_insert,
    (list, "pop"): _m_list_pop,
    (list, "remove"): _m_scan("remove"),  # its visit also pays for the shift
    (list, "index"): _m_scan("index"),
    (list, "count"): _m_scan("count"),
    (list, "reverse"): _m_scan("reverse"),
    (list, "sort"): _m_scan("sort"),
    (list, "copy"): _m_copy,
    (list, "clear"): _m_scan("clear"),
    (tuple, "index"): _m_scan("index"),
    (tuple, "count"): _m_scan("count"),
    (dict, "get"): _m_dict_get,
    (dict, "pop"): _m_dict_pop,
    (dict, "setdefault"): _m_setdefault,
    (dict, "update"): _m_update,
    (dict, "keys"): _m_keys,
    (dict, "values"): _m_values,
    (dict, "items"): _m_items,
    (dict, "copy"): _m_copy,
    (dict, "clear"): _m_scan("clear"),
    (str, "startswith"): _m_scan("startswith"),
    (str, "endswith"): _m_scan("endswith"),
    (str, "split"): _m_split,
    (str, "join"): _m_join,
    (str, "upper"): _m_grow("upper", 3),
    (str, "lower"): _m_grow("lower", 3),
    (str, "strip"): _m_grow("strip", 1),
    (str, "replace"): _m_replace,
    (str, "find"): _m_scan("find"),
    (str, "isdigit"): _m_scan("isdigit"),
    (str, "encode"): _m_grow("encode", 4),
    (str, "count"): _m_scan("count"),
    (str, "index"): _m_scan("index"),
    (bytes, "startswith"): _m_scan("startswith"),
    (bytes, "endswith"): _m_scan("endswith"),
    (bytes, "split"): _m_split,
    (bytes, "join"): _m_join,
    (bytes, "replace"): _m_replace,
    (bytes, "find"): _m_scan("find"),
    (bytes, "decode"): _m_grow("decode", 1),
    (bytes, "hex"): _m_hex,
    (bytes, "count"): _m_scan("count"),
    (bytes, "index"): _m_scan("index"),
    (bytes, "isdigit"): _m_scan("isdigit"),
    (bytes, "upper"): _m_grow("upper", 1),
    (bytes, "lower"): _m_grow("lower", 1),
    (bytes, "strip"): _m_grow("strip", 1),
}
"""(receiver type, method name) -> implementation. Anything else is AttributeError."""
