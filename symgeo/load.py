"""Families by name or path, and parameter points from text: the one loader the command line and
the numeric backends share.

>>> load_family("normal").params
(mu, sigma)
>>> parse_point("mu=0,sigma=1/2", load_family("normal"))
{mu: 0, sigma: 1/2}
"""
from __future__ import annotations

from pathlib import Path

import sympy as sp

from . import catalog
from .errors import SymgeoError
from .family import Family


def load_family(spec: str, chart: str | None = None) -> Family:
    """A catalog name (with options) or a path to a TOML spec file."""
    if spec.endswith(".toml") or Path(spec).is_file():
        from .spec import load_spec
        family = load_spec(spec)
    else:
        family = catalog.get(spec)
    return family.in_chart(chart) if chart else family


def rational(text: str, what: str) -> sp.Rational:
    try:
        return sp.Rational(text)
    except (TypeError, ValueError):
        raise SymgeoError(f"{what} must be a number such as 1, -1 or 1/2, got {text!r}") from None


def parse_point(text: str, family: Family) -> dict:
    """'mu=0,sigma=1' -> validated {symbol: Rational}."""
    values = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, eq, raw = item.partition("=")
        if not eq:
            raise SymgeoError(f"point {text!r}: write name=value pairs, e.g. mu=0,sigma=1")
        values[key.strip()] = rational(raw.strip(), f"value of {key.strip()}")
    return family.check_point(values)
