"""Checks of the settings public numeric routines take: a bad value is refused where it enters,
with its name, never turned into a NaN or an endless loop later.

>>> positive("lr", float("inf"))
Traceback (most recent call last):
...
symgeo.errors.InvalidArgumentError: lr must be a finite number > 0, not inf
"""
from __future__ import annotations

import math
import numbers

from symgeo.errors import InvalidArgumentError


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{name} must be a number, not {value!r}")
    return float(value)


def finite(name: str, value) -> float:
    x = _real(name, value)
    if not math.isfinite(x):
        raise InvalidArgumentError(f"{name} must be a finite number, not {value!r}")
    return x


def positive(name: str, value) -> float:
    x = _real(name, value)
    if not (math.isfinite(x) and x > 0):
        raise InvalidArgumentError(f"{name} must be a finite number > 0, not {value!r}")
    return x


def nonnegative(name: str, value) -> float:
    x = _real(name, value)
    if not (math.isfinite(x) and x >= 0):
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, not {value!r}")
    return x


def in_unit(name: str, value, *, low_closed: bool = True, high_closed: bool = False) -> float:
    """value in [0, 1) by default (momentum, decay rates)."""
    x = _real(name, value)
    ok = (x >= 0 if low_closed else x > 0) and (x <= 1 if high_closed else x < 1)
    if not (math.isfinite(x) and ok):
        interval = ("[" if low_closed else "(") + "0, 1" + ("]" if high_closed else ")")
        raise InvalidArgumentError(f"{name} must lie in {interval}, not {value!r}")
    return x


def count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)
