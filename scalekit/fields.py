"""Validating one field of a user's YAML mapping: each helper returns the typed value or raises a
:class:`SpecError` that names the field (``stages[2].kernel: must be odd ...``).

Shared by the spec loader (spec.py) and the block kinds (blocks/), which parse their own stage
fields. No torch here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
from typing import Any

from .errors import SpecError

ACTIVATIONS = ("relu", "relu6", "silu")
# Past this a channel count is a typo, not a model; it keeps every count an exact int that still
# converts to a finite float for reports (scaled specs are held to it too).
MAX_CHANNELS = 1_000_000_000
# Characters in a name (a spec's, a stage's, an origin's, a preset's) and in a description. A
# name is shown in every table; far past these it is not a name (and a table of it is unreadable).
MAX_NAME_CHARS = 1_000
MAX_DESCRIPTION_CHARS = 10_000

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def short_repr(v: Any) -> str:
    """A short repr of a user's value for an error message (a value can be huge or cyclic)."""
    try:
        return _REPR.repr(v)
    except ValueError:  # an int past Python's str-conversion digit limit, maybe inside a list
        if isinstance(v, int):
            return f"<an integer of about {int(v.bit_length() * 0.30103):,} digits>"
        return f"<a {type(v).__name__} too large to show>"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def type_name(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown field {short_repr(key)} (did you mean {close[0]!r}?)"
    return f"unknown field {short_repr(key)} (valid: {', '.join(valid)})"


def check_keys(data: Any, cls: type, path: str, skip: tuple[str, ...] = ()) -> dict:
    """``data`` must be a mapping whose keys are fields of the dataclass ``cls``."""
    return check_names(data, [f.name for f in dataclasses.fields(cls) if f.name not in skip], path)


def check_names(data: Any, valid: list[str], path: str, *, what: str = "") -> dict:
    """``data`` must be a mapping whose keys are in ``valid``; ``what`` ("a 'conv' block") names
    whose fields they are in the error."""
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping, got {type_name(data)}", field=path or None)
    for key in data:
        if not isinstance(key, str):
            raise SpecError(f"field names must be strings, got {short_repr(key)}", field=path or None)
        if key not in valid:
            name = key if key.isprintable() and len(key) <= 60 else short_repr(key)
            reason = (_suggest(key, valid) if not what else
                      f"not a field of {what} (valid: {', '.join(sorted(valid))})")
            raise SpecError(reason, field=join(path, name))
    return data


def required(data: dict, key: str, path: str) -> Any:
    if key not in data or data[key] is None:
        raise SpecError("missing required field", field=join(path, key))
    return data[key]


def int_field(data: dict, key: str, path: str, default: Any = dataclasses.MISSING, *,
              lo: int | None = None, hi: int | None = None) -> int:
    v = data.get(key, default) if default is not dataclasses.MISSING else required(data, key, path)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(f"expected an integer, got {type_name(v)} {short_repr(v)}",
                        field=join(path, key))
    if lo is not None and v < lo:
        raise SpecError(f"must be >= {lo:,}, got {short_repr(v)}", field=join(path, key))
    if hi is not None and v > hi:
        raise SpecError(f"must be <= {hi:,}, got {short_repr(v)}", field=join(path, key))
    return v


def float_field(data: dict, key: str, path: str, default: Any = dataclasses.MISSING, *,
                lo: float | None = None, lo_open: bool = False, hi: float | None = None,
                hi_open: bool = False) -> float:
    v = data.get(key, default) if default is not dataclasses.MISSING else required(data, key, path)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"expected a number, got {type_name(v)} {short_repr(v)}",
                        field=join(path, key))
    try:
        v = float(v)
    except OverflowError:  # an int too large for a float
        v = math.inf
    if not math.isfinite(v):
        raise SpecError(f"must be finite, got {v}", field=join(path, key))
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise SpecError(f"must be {'>' if lo_open else '>='} {lo:g}, got {v:g}", field=join(path, key))
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise SpecError(f"must be {'<' if hi_open else '<='} {hi:g}, got {v:g}", field=join(path, key))
    return v


def str_field(data: dict, key: str, path: str, default: Any = dataclasses.MISSING, *,
              choices: tuple[str, ...] | None = None, max_len: int = MAX_NAME_CHARS) -> str:
    v = data.get(key, default) if default is not dataclasses.MISSING else required(data, key, path)
    if not isinstance(v, str):
        raise SpecError(f"expected a string, got {type_name(v)} {short_repr(v)}",
                        field=join(path, key))
    if len(v) > max_len:
        raise SpecError(f"{len(v):,} characters; at most {max_len:,} are allowed",
                        field=join(path, key))
    if choices is not None and v not in choices:
        raise SpecError(f"unknown value {short_repr(v)} (valid: {', '.join(choices)})",
                        field=join(path, key))
    return v


def kernel_field(data: dict, key: str, path: str, default: int) -> int:
    k = int_field(data, key, path, default, lo=1, hi=31)
    if k % 2 == 0:
        raise SpecError(f"must be odd ('same' padding k // 2 needs an odd kernel), got {k}",
                        field=join(path, key))
    return k


def stride_field(data: dict, key: str, path: str, default: int) -> int:
    s = int_field(data, key, path, default)
    if s not in (1, 2):
        raise SpecError(f"must be 1 or 2, got {s}", field=join(path, key))
    return s


def act_field(data: dict, key: str, path: str, default: str = "relu") -> str:
    return str_field(data, key, path, default, choices=ACTIVATIONS)
