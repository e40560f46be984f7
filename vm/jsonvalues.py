"""VM values as JSON, for people and HTTP APIs, and back.

JSON has no bytes, tuples or non-string keys, so those are written as
one-key objects whose key starts with ``$``:

* ``bytes``  -> ``{"$bytes": "<lowercase hex>"}``
* ``tuple``  -> ``{"$tuple": [...]}``
* a dict whose keys are not all strings, or whose keys start with ``$``
  -> ``{"$dict": [[key, value], ...]}`` (insertion order kept)
* any other dict -> a JSON object; ``None``/``bool``/``int``/``str``/``list`` as themselves.

:func:`from_json` accepts exactly these forms (floats and unknown ``$`` keys
are refused), so ``from_json(to_json(v))`` gives back ``v`` with its types.
"""

from __future__ import annotations

from typing import Any

from vm.gas import MAX_NESTING_DEPTH
from vm.values import KEY_TYPES, check_value

BYTES_TAG = "$bytes"
TUPLE_TAG = "$tuple"
DICT_TAG = "$dict"


class JSONValueError(ValueError):
    """A JSON document does not describe a VM value."""


def to_json(value: Any) -> Any:
    """A JSON-serialisable form of a VM value (the value must already be within the limits)."""
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is bytes:
        return {BYTES_TAG: value.hex()}
    if t is list:
        return [to_json(v) for v in value]
    if t is tuple:
        return {TUPLE_TAG: [to_json(v) for v in value]}
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: to_json(v) for k, v in value.items()}
        return {DICT_TAG: [[to_json(k), to_json(v)] for k, v in value.items()]}
    raise JSONValueError(f"a {t.__name__} is not a VM value")


def from_json(doc: Any) -> Any:
    """The VM value a JSON document (as parsed by ``json.loads``) describes."""
    value = _from(doc, 0)
    try:
        check_value(value)
    except Exception as exc:
        raise JSONValueError(str(exc)) from None
    return value


def _from(doc: Any, depth: int) -> Any:
    if depth > MAX_NESTING_DEPTH:
        raise JSONValueError(f"nested deeper than {MAX_NESTING_DEPTH}")
    t = type(doc)
    if doc is None or t is bool or t is int or t is str:
        return doc
    if t is float:
        raise JSONValueError("floats are not VM values")
    if t is list:
        return [_from(v, depth + 1) for v in doc]
    if t is not dict:
        raise JSONValueError(f"unexpected JSON {t.__name__}")
    special = [k for k in doc if k.startswith("$")]
    if not special:
        return {k: _from(v, depth + 1) for k, v in doc.items()}
    if len(doc) != 1:
        raise JSONValueError(f"{special[0]!r} must be the only key of its object")
    tag, body = next(iter(doc.items()))
    if tag == BYTES_TAG:
        if type(body) is not str:
            raise JSONValueError("$bytes needs a hex string")
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise JSONValueError(f"$bytes value {body[:40]!r} is not hex") from None
    if tag == TUPLE_TAG:
        if type(body) is not list:
            raise JSONValueError("$tuple needs an array")
        return tuple(_from(v, depth + 1) for v in body)
    if tag == DICT_TAG:
        if type(body) is not list:
            raise JSONValueError("$dict needs an array of [key, value] pairs")
        out: dict[Any, Any] = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise JSONValueError("$dict entries must be [key, value] pairs")
            key = _from(pair[0], depth + 1)
            if type(key) not in KEY_TYPES:
                raise JSONValueError("dict keys must be str, int, bytes, bool or null")
            out[key] = _from(pair[1], depth + 1)
        return out
    raise JSONValueError(f"unknown tag {tag!r}")
