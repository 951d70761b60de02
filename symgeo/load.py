"""Families by name or path, and parameter points from text: the one loader the command line and
the numeric backends share.

>>> load_family("normal").params
(mu, sigma)
>>> parse_point("mu=0,sigma=1/2", load_family("normal"))
{mu: 0, sigma: 1/2}
"""
from __future__ import annotations

import re
from pathlib import Path

import sympy as sp

from . import catalog
from .errors import InvalidArgumentError
from .family import Family


def load_family(spec: str, chart: str | None = None) -> Family:
    """A catalog name (with options) or a path to a TOML spec file."""
    if Path(spec).is_dir():
        raise InvalidArgumentError(f"{spec} is a folder: give a catalog name or a .toml spec file")
    if spec.endswith(".toml") or Path(spec).is_file():
        from .spec import load_spec
        family = load_spec(spec)
    else:
        family = catalog.get(spec)
    return family.in_chart(chart) if chart else family


MAX_NUMBER_CHARS = 80
MAX_DECIMAL_EXPONENT = 400  # |e| in 1e400: beyond float range either way, and still cheap to hold exactly
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def rational(text: str, what: str) -> sp.Rational:
    """An exact number from short decimal or fraction text ('2', '-0.5', '1e-300', '3/4').

    Numbers are bounded before they are built: '1e999999999' is refused, not expanded into a
    billion-digit integer."""
    text = text.strip()
    hint = f"{what} must be a number such as 1, -1, 0.25, 1e-3 or 1/2, got {text!r}"
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidArgumentError(f"{what}: number longer than {MAX_NUMBER_CHARS} characters")
    parts = text.split("/")
    if len(parts) > 2 or not all(_NUMBER.fullmatch(part.strip()) for part in parts):
        raise InvalidArgumentError(hint)
    for part in parts:
        exponent = part.lower().partition("e")[2]
        if exponent and abs(int(exponent)) > MAX_DECIMAL_EXPONENT:
            raise InvalidArgumentError(f"{what}: {text!r} is outside the range symgeo accepts "
                                       f"(decimal exponents up to ±{MAX_DECIMAL_EXPONENT})")
    numerator = sp.Rational(parts[0].strip())
    denominator = sp.Rational(parts[1].strip()) if len(parts) == 2 else sp.Integer(1)
    if denominator == 0:
        raise InvalidArgumentError(f"{what}: division by zero in {text!r}")
    return numerator / denominator


def as_family(family: str | Family, chart: str | None = None) -> Family:
    """A catalog name or spec path (loaded), or a Family; in `chart` if one is named."""
    if isinstance(family, str):
        return load_family(family, chart)
    return family.in_chart(chart) if chart else family


def parse_point(text: str, family: Family) -> dict:
    """'mu=0,sigma=1' -> validated {symbol: Rational}."""
    values = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq:
            raise InvalidArgumentError(f"point {text!r}: write name=value pairs, e.g. mu=0,sigma=1")
        if key in values:
            raise InvalidArgumentError(f"point {text!r}: {key} is given twice")
        values[key] = rational(raw, f"value of {key}")
    return family.check_point(values)
