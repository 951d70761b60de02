"""Numbers from formulas: a formula evaluated at a point in floating point, checked.

A numeric question gets a numeric answer: the formula is evaluated by mpmath at a working precision,
never simplified exactly at the point (10**7 ** 10**7 or a harmonic number of a large integer would
be built digit by digit). The value is computed at two precisions; it is returned only when both
agree, it is finite and it is real.

>>> import sympy as sp; x = sp.Symbol("x")
>>> value_at(sp.log(1 + x) - x, {x: sp.Rational(1, 10**12)})
-4.999999999996667e-25
"""
from __future__ import annotations

import mpmath
import sympy as sp

from .errors import NumericalError

DIGITS = 30
AGREEMENT = 1e-12  # relative, between the two precisions


MAX_DIGITS = 480
BESIDE = sp.Rational(1, 10 ** 40)  # where a formula is 0/0 at the point itself, it is read this close by


def value_at(expr: sp.Expr, point: dict, digits: int = DIGITS) -> float:
    """expr at {symbol: number} as a checked float; NumericalError when it is not a finite real.

    The precision doubles (up to MAX_DIGITS) until two successive evaluations agree, so a value
    lost to cancellation in floating point is recovered, not printed wrong."""
    symbols = sorted(expr.free_symbols, key=str)
    missing = [s for s in symbols if s not in point]
    if missing:
        raise NumericalError(f"no value for {', '.join(map(str, missing))}")
    if expr.has(sp.Integral, sp.Sum):
        return _represented_at(expr, point)
    return _settled(expr, sp.lambdify(symbols, expr, "mpmath"), point, [point[s] for s in symbols], digits)


def precise_function(expr: sp.Expr, symbols):
    """expr as a function of `symbols` (positional numbers) evaluated as value_at does, lambdified once: for
    the many points of a quadrature where floating point loses the formula to cancellation."""
    symbols = list(symbols)
    missing = sorted(map(str, expr.free_symbols - set(symbols)))
    if missing or expr.has(sp.Integral, sp.Sum):
        raise NumericalError(f"no precise evaluation of {_name(expr)} in {symbols}"
                             + (f" (no value for {', '.join(missing)})" if missing else ""))
    fn = sp.lambdify(symbols, expr, "mpmath")

    def evaluate(*values):
        return _settled(expr, fn, dict(zip(symbols, values)), list(values), DIGITS)
    return evaluate


def _settled(expr, fn, point: dict, values: list, digits: int) -> float:
    """fn at `values`, the precision doubled until two successive evaluations agree."""
    previous = _evaluate(fn, values, digits)
    if mpmath.isnan(previous):  # 0/0 exactly at the point: its limit, if finite (never built exactly)
        values = [v + BESIDE for v in values]
        previous = _evaluate(fn, values, digits)
    while digits < MAX_DIGITS:
        digits *= 2
        current = _evaluate(fn, values, digits)
        if _agree(previous, current, digits // 2):
            return _checked(expr, point, current)
        previous = current
    raise NumericalError(f"{_name(expr)} at {_show(point)}: no stable value up to {MAX_DIGITS} digits "
                         f"(last {mpmath.nstr(previous, 8)})")


REPRESENTATION_DIGITS = (20, 30)


def _represented_at(expr, point: dict) -> float:
    """A formula holding an Integral or a Sum (a representation): its atoms by the expectation engine's
    quadrature and summation (breaks at the integrand's peak, tails mapped), at 20 and 30 digits, which
    must agree; a lambdified mpmath.quad without breaks misses a narrow peak (the inverse Gaussian's
    entropy at λ = 1000 came out 0.39 too low)."""
    from .expectation.representation import evaluate
    low, high = (evaluate(expr, point, dps) for dps in REPRESENTATION_DIGITS)
    if not _agree(low, high, REPRESENTATION_DIGITS[0]):
        raise NumericalError(
            f"{_name(expr)} at {_show(point)}: its integral does not settle (quadrature at 20 "
            f"and 30 digits gives {mpmath.nstr(low, 8)} and {mpmath.nstr(high, 8)})"
        )
    return _checked(expr, point, high)


def _agree(low, high, digits: int) -> bool:
    if not (mpmath.isfinite(mpmath.re(low)) and mpmath.isfinite(mpmath.re(high))):
        return mpmath.isnan(low) == mpmath.isnan(high) and not mpmath.isfinite(mpmath.re(high))
    return abs(low - high) <= AGREEMENT * abs(high) or abs(low - high) <= mpmath.mpf(10) ** (-digits)


def _checked(expr, point, value) -> float:
    real = mpmath.re(value)
    if not mpmath.isfinite(real) or not mpmath.isfinite(mpmath.im(value)):
        raise NumericalError(f"{_name(expr)} is not finite at {_show(point)}")
    if abs(mpmath.im(value)) > AGREEMENT * max(1, abs(real)):
        raise NumericalError(f"{_name(expr)} is not real at {_show(point)} (value {mpmath.nstr(value, 8)})")
    result = float(real)
    if not mpmath.isfinite(result):
        raise NumericalError(
            f"{_name(expr)} at {_show(point)} is {mpmath.nstr(real, 8)}, beyond floating point"
        )
    return result


def _evaluate(fn, values, digits: int):
    with mpmath.workdps(digits):
        try:
            return mpmath.mpmathify(fn(*[_mpf(v) for v in values]))
        except (ZeroDivisionError, ValueError, OverflowError) as exc:
            return mpmath.mpf("nan") if not isinstance(exc, OverflowError) else mpmath.inf


def _mpf(value):
    if isinstance(value, sp.Rational):
        return mpmath.mpf(int(value.p)) / int(value.q)
    return mpmath.mpf(sp.N(value, mpmath.mp.dps + 5)) if isinstance(value, sp.Basic) else mpmath.mpf(value)


def _show(point: dict) -> str:
    return ", ".join(f"{k} = {_short(v)}" for k, v in point.items())


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 24 else mpmath.nstr(_mpf(value) if isinstance(value, sp.Basic) else value, 8)


def _name(expr) -> str:
    text = str(expr)
    return text if len(text) <= 80 else "the formula"
