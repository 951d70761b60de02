"""Numeric expectations by mpmath quadrature or summation: the independent check of every closed form.

Infinite ends are integrated in log-space: beyond the last finite point c the variable is written
x = c + eᵘ (u over the whole line), so a density that decays like a power (log-logistic with shape
0.7) decays exponentially in u, and a log-type end (log-Cauchy near 0 and ∞, where 1/(x log²x) hides
mass below x = 10⁻³⁰⁰) decays like 1/u², which tanh-sinh integrates.
"""
from __future__ import annotations

import mpmath
import sympy as sp

from ..support import Integers, Interval

NEGLIGIBLE_LOG = -5000  # e^-5000: far below any working precision


EXP_LIMIT = 10 ** 9  # exp of more than this overflows; of less than minus this is 0


def _bounded_exp(a):
    """mpmath's exp, without building exp(±e^(10^20))-sized numbers far out in a tail."""
    if mpmath.re(a) > EXP_LIMIT:
        raise OverflowError("exp overflow")
    return mpmath.mpf(0) if mpmath.re(a) < -EXP_LIMIT else mpmath.exp(a)


def _bounded_expm1(a):
    if mpmath.re(a) > EXP_LIMIT:
        raise OverflowError("exp overflow")
    return mpmath.mpf(-1) if mpmath.re(a) < -EXP_LIMIT else mpmath.expm1(a)


FLOAT_LOG_MAX = 690  # e^690 ~ 10^300


def _special(expr, z) -> bool:
    kinds = (sp.erf, sp.erfc, sp.besseli, sp.besselj, sp.gamma, sp.loggamma, sp.polygamma, sp.beta)
    return any(node.has(z) for node in sp.sympify(expr).atoms(*kinds))


def _lambdas(h, logq, z):
    """mpmath functions of z; hyperbolic functions are written with exp first, so the bounded exp
    guards them too (cosh(e^(10^20)) far out in a tail took minutes, not an overflow); 1 − e^u is
    expm1 (the generalized exponential's (1 − e^(−λx))^(α−1) is 0^(−0.3) at x = 1e-30 otherwise)."""
    modules = [{"exp": _bounded_exp, "expm1": _bounded_expm1}, "mpmath"]
    h, logq = (_exp_form(_floated(e)) for e in (h, logq))
    return sp.lambdify(z, h, modules=modules), sp.lambdify(z, logq, modules=modules)


BIG_INTEGER = 1000


def _floated(expr):
    """Integers beyond BIG_INTEGER as 40-digit Floats: SymPy would otherwise evaluate log Γ(10⁶ + 1) or a
    binomial coefficient of n = 10⁶ exactly, digit by digit, while the function is printed."""
    big = {i: sp.Float(i, 40) for i in sp.sympify(expr).atoms(sp.Integer) if abs(i) > BIG_INTEGER}
    return sp.sympify(expr).xreplace(big) if big else sp.sympify(expr)


def _exp_form(expr):
    kinds = (sp.sinh, sp.cosh, sp.tanh, sp.sech, sp.csch, sp.coth)
    expr = sp.sympify(expr)
    expr = expr.rewrite(sp.exp) if expr.has(*kinds) else expr
    return expr.replace(_one_minus_exp, _as_expm1) if expr.has(sp.exp) else expr


def _one_minus_exp(node) -> bool:
    if not (node.is_Add and len(node.args) == 2):
        return False
    c, rest = node.as_coeff_Add()
    coeff, e = rest.as_coeff_Mul()
    return abs(c) == 1 and coeff == -c and isinstance(e, sp.exp)


def _as_expm1(node):
    from sympy.codegen.cfunctions import expm1
    c, rest = node.as_coeff_Add()
    _, e = rest.as_coeff_Mul()
    return -c * expm1(e.args[0])  # 1 − e^u = −expm1(u), e^u − 1 = expm1(u)


def integrate_density(h, logq, z, lo, hi, dps: int, breaks=()) -> mpmath.mpf:
    """∫ h q dz over (lo, hi) with q = exp(logq), by tanh-sinh after a log change of variable on
    infinite ends; log q is evaluated first, so far-out nodes where q underflows never build
    numbers like exp(-exp(1e100))."""
    with mpmath.workdps(dps + 5):
        fh, fl = _lambdas(h, logq, z)

        a = None if lo == -sp.oo else mpmath.mpf(sp.N(lo, dps + 5))
        b = None if hi == sp.oo else mpmath.mpf(sp.N(hi, dps + 5))
        # h q is integrated relative to its largest size on the grid: mpmath.quad's tolerance is absolute,
        # so an integrand of size 1e-336 (a representation times e^769) would pass at its first level
        peak, tallest, height = _landmarks(fh, fl, a, b)

        def weighted(t, log_jacobian=0):  # h(t) q(t) J, negligible where log(q J) is
            try:
                log_w = fl(t) - height + log_jacobian
                if mpmath.re(log_w) < NEGLIGIBLE_LOG:
                    return mpmath.mpf(0)
                return fh(t) * mpmath.exp(log_w)
            except (OverflowError, MemoryError):  # exp(exp(...)), erfc(10^300): far out in a light tail
                return mpmath.mpf(0)
            except ZeroDivisionError:  # 0/0 at a node within 10^-30 of an end, where its weight is nil
                return mpmath.mpf(0)

        def f(t):
            return weighted(t)

        # special functions cost without bound at |x| ~ 10^1000 (mpmath's erfc): stop at 10^300
        far = FLOAT_LOG_MAX if _special(h, z) or _special(logq, z) else mpmath.inf

        def beyond(start, sign):  # ∫ over x = start ± eᵘ, u ∈ ℝ: power-law and log-type ends decay
            return mpmath.quad(lambda u: weighted(start + sign * mpmath.exp(u), u), [-mpmath.inf, 0, far])

        peaks = [
            c for c in (peak, tallest) if c is not None
        ]  # of q, and of h q (E[e^(−x)] far out in a tail)
        inner = sorted({mpmath.mpf(c) for c in list(breaks) + peaks
                        if (a is None or c > a) and (b is None or c < b)})
        if a is None and b is None:
            inner = inner or [mpmath.mpf(0)]
        pts = ([] if a is None else [a]) + inner + ([] if b is None else [b])
        total = mpmath.quad(f, pts) if len(pts) > 1 else mpmath.mpf(0)
        if a is None:
            total += beyond(pts[0], -1)
        if b is None:
            total += beyond(pts[-1], 1)
        return total * mpmath.exp(height)


def _grid(a, b) -> list:
    """Points spanning the support over many scales."""
    scales = [mpmath.mpf(10) ** (k / mpmath.mpf(4)) for k in range(-12, 25)]
    if a is not None and b is not None:
        return [a + (b - a) * k / 64 for k in range(1, 64)]
    if a is not None:
        return [a + s for s in scales]
    if b is not None:
        return [b - s for s in reversed(scales)]
    return [-s for s in reversed(scales)] + [mpmath.mpf(0)] + scales


def _landmarks(fh, log_q, a, b) -> tuple:
    """One pass over a grid spanning the support over many scales: (where q is largest, where |h q| is
    largest, the largest log |h q|, 0 when none is finite). A break at a maximum keeps tanh-sinh from
    stepping over a narrow peak far from the origin (of q, or of h q: E[e^(−x)] far out in a tail); a
    maximum at the grid's edge (q growing into an end, 1/(x log²x) at 0) gives no break."""
    grid = _grid(a, b)
    best_q, best_hq = (None, None), (None, None)
    for index, t in enumerate(grid):
        try:
            log_value = mpmath.re(log_q(t))
            log_size = log_value + (mpmath.log(abs(fh(t))) if fh is not None else 0)
        except (ArithmeticError, ValueError, TypeError):
            continue
        if mpmath.isfinite(log_value) and (best_q[0] is None or log_value > best_q[0]):
            best_q = (log_value, index)
        if mpmath.isfinite(log_size) and (best_hq[0] is None or log_size > best_hq[0]):
            best_hq = (log_size, index)

    def inside(index):
        return grid[index] if index is not None and 0 < index < len(grid) - 1 else None
    height = best_hq[0] if best_hq[0] is not None else mpmath.mpf(0)
    return inside(best_q[1]), inside(best_hq[1]), height


def _peak(log_q, a, b):
    """Roughly where q is largest, when that is inside the support (see _landmarks)."""
    return _landmarks(None, log_q, a, b)[0]


def numeric_expectation(family, f, point: dict, dps: int = 30, peaks_of=()):
    """E[f] at a numeric parameter point by mpmath quadrature or summation (an independent check);
    the peaks of the members at `peaks_of` are breaks too (a divergence's second member, far away)."""
    (x,) = family.variables
    f_at = sp.sympify(f).xreplace(point)
    log_p = family.log_density.xreplace(point)
    lo, hi = (sp.sympify(family.support.lo).xreplace(point), sp.sympify(family.support.hi).xreplace(point))
    if isinstance(family.support, Integers):
        return sum_density(f_at, log_p, x, lo, hi, dps)
    breaks = _kinks(f_at * log_p, x, dps)
    for other in peaks_of:
        breaks |= _peaks_at(family.log_density.xreplace(other), x, lo, hi, dps)
    return integrate_density(f_at, log_p, x, lo, hi, dps, breaks)


def _peaks_at(log_p, x, lo, hi, dps) -> set:
    with mpmath.workdps(dps + 5):
        _, fl = _lambdas(sp.Integer(1), log_p, x)
        a = None if lo == -sp.oo else mpmath.mpf(sp.N(lo, dps + 5))
        b = None if hi == sp.oo else mpmath.mpf(sp.N(hi, dps + 5))
        peak = _peak(fl, a, b)
    return set() if peak is None else {peak}


def sum_density(f, logp, x, lo, hi, dps: int):
    """Σ f p over lo..hi; power-law tails (Yule–Simon) are extrapolated by mpmath's Euler–Maclaurin
    and Richardson/Shanks accelerations, which nsum picks among."""
    with mpmath.workdps(dps + 5):
        ff, fl = _lambdas(f, logp, x)

        def term(k):
            log_q = fl(k)
            return mpmath.mpf(0) if mpmath.re(log_q) < NEGLIGIBLE_LOG else ff(k) * mpmath.exp(log_q)
        top = mpmath.inf if hi == sp.oo else int(hi)
        if top != mpmath.inf and top - int(lo) <= 20000:
            return mpmath.fsum(term(k) for k in range(int(lo), top + 1))
        peak = _integer_peak(fl, int(lo), top)
        if peak - int(lo) > BLOCK:  # the mass sits far from the start (a binomial of n = 10⁶, a rate of 10⁵)
            around = _sum_around(term, peak, int(lo), top, dps)
            if around is not None:
                return around
        try:
            total, start = _direct_sum(term, int(lo), dps)
        except (ZeroDivisionError, ValueError):  # a term that cancels far out: extrapolate instead
            total, start = mpmath.mpf(0), int(lo)
        if start is None:
            return total
        try:  # Euler–Maclaurin catches power-law tails that Richardson/Shanks misjudge
            return total + mpmath.nsum(term, [start, top], method="r+s+e")
        except (ValueError, ZeroDivisionError):  # a term with no smooth extension between integers
            return total + mpmath.nsum(term, [start, top], method="r+s")  # (sign(x), x!): integers only


DIRECT_TERMS = 5000
BLOCK = 250
AROUND_BLOCKS = 4000  # blocks each way from the peak before the sum is left to extrapolation


def _integer_peak(log_term, lo: int, top) -> int:
    """Roughly the largest term's index: the best of a geometric grid from lo (and back from a finite
    top), then a ternary search between its neighbours (the terms of a unimodal law)."""
    span = (10 ** 15) if top == mpmath.inf else top - lo
    grid = sorted({lo + round(10 ** (j / 8)) for j in range(8 * len(str(span)) + 1)
                   if 10 ** (j / 8) <= span} | {lo})

    def value(k):
        try:
            v = mpmath.re(log_term(k))
            return v if mpmath.isfinite(v) else -mpmath.inf
        except (ArithmeticError, ValueError, TypeError):
            return -mpmath.inf
    scores = [value(k) for k in grid]
    best = max(range(len(grid)), key=lambda i: scores[i])
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    while right - left > 2:
        a, b = left + (right - left) // 3, right - (right - left) // 3
        if value(a) < value(b):
            left = a
        else:
            right = b
    return max(range(left, right + 1), key=value)


def _sum_around(term, peak: int, lo: int, top, dps: int):
    """Σ of the terms outward from the peak, block by block each way until a block is negligible
    beside the total; None when the terms do not fall off (a heavy tail: extrapolate instead)."""
    total = mpmath.fsum(term(k) for k in range(max(lo, peak - BLOCK), peak + BLOCK))
    for direction in (-1, 1):
        start = peak - BLOCK if direction < 0 else peak + BLOCK
        for _ in range(AROUND_BLOCKS):
            ks = range(max(lo, start - BLOCK), start) if direction < 0 else \
                range(start, start + BLOCK if top == mpmath.inf else min(start + BLOCK, top + 1))
            if not ks:
                break
            block = mpmath.fsum(term(k) for k in ks)
            total += block
            start = ks[0] if direction < 0 else ks[-1] + 1
            if abs(block) <= mpmath.mpf(10) ** -(dps + 2) * abs(total):
                break
        else:
            return None
    return total


def _direct_sum(term, lo: int, dps: int):
    """(Σ, None) when blocks of terms fall below 10^-(dps+2) of the total within DIRECT_TERMS
    (a geometric tail: no extrapolation, which integrates gamma functions for Euler–Maclaurin and
    took minutes for the negative binomial); else (the partial sum, where the tail starts)."""
    total, k = mpmath.mpf(0), lo
    while k - lo < DIRECT_TERMS:
        block = mpmath.fsum(term(j) for j in range(k, k + BLOCK))
        total += block
        k += BLOCK
        # (a first block of negligible terms, before the mass of a large mean, is not the end)
        if total != 0 and abs(block) <= mpmath.mpf(10) ** -(dps + 2) * abs(total) and \
                abs(term(k)) <= abs(term(k - BLOCK)):
            return total, None
    return total, k


def _kinks(expr, x, dps) -> set:
    """Points where |.| or sign(.) of a linear argument switch: quadrature breakpoints."""
    out = set()
    for node in expr.atoms(sp.Abs, sp.sign):
        arg = node.args[0]
        if arg.is_polynomial(x) and sp.degree(arg, x) == 1:
            out.add(mpmath.mpf(sp.N(sp.solve(arg, x)[0], dps)))
    return out


def quad_law(h, logq, z, support: Interval, dps: int):
    """∫ h q dz over a (reduced) support: the reference value of a constant or shape function."""
    return integrate_density(h, logq, z, support.lo, support.hi, dps, _kinks(h * logq, z, dps))


def agrees(expr, reference, rtol: float) -> bool:
    try:
        value = sp.N(expr, 40)
        return abs(complex(value) - complex(reference)) <= rtol * max(1.0, abs(complex(reference)))
    except (TypeError, ValueError):
        return False
