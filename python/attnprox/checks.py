"""Checks of the values the Python API takes, before they reach the engine: every wrong type or out-of-range number
is an `attnprox.InvalidArgumentError` (or `OutOfRangeError` for an index) that names the argument, never a raw
TypeError, KeyError or OverflowError from the binding. The rules are docs/inputs.md's."""
import math
from typing import Optional

import numpy as np

from .errors import InvalidArgumentError, OutOfRangeError

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
# The most libtorch threads `load(threads=...)` takes (attnprox::kMaxThreads).
MAX_THREADS = 1024


def is_integer(value) -> bool:
    """An int or NumPy integer, not a bool (True is not a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _whole(value, name: str) -> int:
    """`value` as an int, or InvalidArgumentError when it is not a whole number (a float, a str, a bool)."""
    if not is_integer(value):
        raise InvalidArgumentError(f"{name} must be a whole number (an int), found {value!r} "
                                   f"({type(value).__name__})")
    return int(value)


def integer(value, name: str, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """`value` as an int, or InvalidArgumentError when it is not a whole number (a float, a str, a bool) or lies
    outside [minimum, maximum]."""
    value = _whole(value, name)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f"at least {minimum}"
        high = "" if maximum is None else f"at most {maximum}"
        raise InvalidArgumentError(f"{name} must be {' and '.join(x for x in (low, high) if x)}, found {value}")
    return value


def index(value, name: str) -> int:
    """A layer, head or token index: a whole number; one beyond what any model or text has (outside the 32-bit range
    the engine takes) is an OutOfRangeError."""
    value = _whole(value, name)
    if not INT32_MIN <= value <= INT32_MAX:
        raise OutOfRangeError(f"{name} {value} requested: no model or text has that many")
    return value


def position(value, name: str) -> int:
    """A token position (int64 in the engine)."""
    value = _whole(value, name)
    if not INT64_MIN <= value <= INT64_MAX:
        raise OutOfRangeError(f"{name} {value} requested: no text has that many tokens")
    return value


def head(value) -> Optional[int]:
    """None (every head, or their mean) or a head index."""
    return None if value is None else index(value, "head")


def index_list(values, name: str) -> list:
    """None → [] (all of them); one index → [it]; a list of indices."""
    if values is None:
        return []
    if is_integer(values):
        return [index(values, name)]
    if isinstance(values, (str, bytes, dict, set, frozenset)) or not hasattr(values, "__iter__"):
        raise InvalidArgumentError(f"{name} must be None, a whole number or a list of them, found {values!r}")
    return [index(v, name) for v in values]


def real(value, name: str) -> float:
    """A real number (int or float, not a bool or a str)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a number, found {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value):
        raise InvalidArgumentError(f"{name} must be a number, found NaN")
    return value


def temperature(value) -> float:
    """A softmax temperature: a positive finite number (the engine's rule, said the same way)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"temperature must be a number, found {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"temperature must be a positive finite number, found {value}")
    return value


def threads(value) -> int:
    """load(threads=...): 0 (libtorch's default) or 1..MAX_THREADS."""
    return integer(value, "threads", 0, MAX_THREADS)
