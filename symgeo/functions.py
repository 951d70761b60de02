"""The functions a declaration may use: the spec parser's whitelist, each printed by both numeric
backends (numpy via scipy.special, torch via torch.special), so a closed form built from them only is
one both backends evaluate."""
from __future__ import annotations

import sympy as sp

FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
    "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh,
    "acosh": sp.acosh, "atanh": sp.atanh, "gamma": sp.gamma,
    "loggamma": sp.loggamma, "lgamma": sp.loggamma, "digamma": sp.digamma, "polygamma": sp.polygamma,
    "beta": sp.beta, "binomial": sp.binomial, "factorial": sp.factorial, "erf": sp.erf,
    "erfc": sp.erfc, "besseli": sp.besseli, "besselj": sp.besselj, "abs": sp.Abs, "Abs": sp.Abs,
    "sign": sp.sign,
}


def _classes() -> tuple:
    t = sp.Symbol("t")
    return tuple({f if isinstance(f, type) else type(f(t)) for f in FUNCTIONS.values()})


BACKEND_FUNCTIONS = _classes()


def evaluable(expr) -> bool:
    """Only whitelisted functions (Ei, hyper, uppergamma and the like are not printable for torch)."""
    return all(isinstance(f, BACKEND_FUNCTIONS) for f in sp.sympify(expr).atoms(sp.Function))
