"""Standard laws with a known joint transform, and the change of variable that reaches one.

Three laws carry every identity: Gamma(k, rate) with E[V^s e^{-tV}], Beta(a, b) with E[V^s (1-V)^t]
and Normal(m, s²) with E[V^n e^{tV}]. Differentiating the transform in s gives E[V^s log^m V]
(polygammas, beta functions) exactly. A reduced law q(w) is carried onto one of them by a chain of
at most four steps, each found from the shape of log q:

- fold      w ↦ w² for a law symmetric about 0 (odd parts of an integrand vanish);
- power     w ↦ c·w^p for a term c·w^p in log q (generalized gamma, Weibull, Burr, Fréchet, Kumaraswamy);
- ratio     w ↦ w/(1 + w) when log(1 + w) appears (beta prime → beta: Student-t, log-logistic, Lomax);
- exp       w ↦ e^{cw} for a term e^{cw} (Gumbel, logistic, log-gamma, generalized exponential);
- log       w ↦ log w when log w appears non-linearly (log-normal type).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..support import Interval

POSITIVE, UNIT, REALS = Interval(0, sp.oo), Interval(0, 1), Interval(-sp.oo, sp.oo)
MAX_STEPS = 4


@dataclass(frozen=True)
class GammaLaw:
    """rate^k v^(k-1) e^(-rate v) / Γ(k) on (0, ∞)."""

    k: sp.Expr
    rate: sp.Expr
    support = POSITIVE

    def transform(self, s, t):
        """E[V^s e^{-tV}]."""
        return sp.gamma(self.k + s) / sp.gamma(self.k) * self.rate ** self.k / (self.rate + t) ** (self.k + s)

    def exists(self, s, t) -> list:
        """Where the transform is finite: E[V^s e^{-tV}] needs k + s > 0 and rate + t > 0."""
        return [self.k + s > 0, self.rate + t > 0]

    def __str__(self):
        return f"Gamma({self.k}, rate={self.rate})"


@dataclass(frozen=True)
class BetaLaw:
    """v^(a-1) (1-v)^(b-1) / B(a, b) on (0, 1)."""

    a: sp.Expr
    b: sp.Expr
    support = UNIT

    def transform(self, s, t):
        """E[V^s (1-V)^t]."""
        a, b = self.a, self.b
        return (sp.gamma(a + s) * sp.gamma(b + t) * sp.gamma(a + b)
                / (sp.gamma(a + b + s + t) * sp.gamma(a) * sp.gamma(b)))

    def exists(self, s, t) -> list:
        """E[V^s (1-V)^t] needs a + s > 0 and b + t > 0."""
        return [self.a + s > 0, self.b + t > 0]

    def __str__(self):
        return f"Beta({self.a}, {self.b})"


@dataclass(frozen=True)
class NormalLaw:
    """N(m, s2) on the real line."""

    m: sp.Expr
    s2: sp.Expr
    support = REALS

    def transform(self, t):
        """E[e^{tV}]."""
        return sp.exp(self.m * t + self.s2 * t ** 2 / 2)

    def exists(self, s, t) -> list:
        return []  # every E[V^n e^{tV}] is finite

    def __str__(self):
        return f"Normal({self.m}, {self.s2})"


@dataclass(frozen=True)
class Step:
    """One change of variable: the old variable is `old_of_new(v)`; `fold` symmetrizes first."""

    name: str
    v: sp.Symbol
    old_of_new: sp.Expr
    support: Interval
    fold: bool = False

    def apply(self, expr, w):
        if self.fold:
            expr = (expr + expr.xreplace({w: -w})) / 2
        return clean(expr.xreplace({w: self.old_of_new}), self.v, self.support)

    def log_density(self, logq, w, sample: dict):
        jac = sp.factor(sp.together(sp.diff(self.old_of_new, self.v)))
        at = jac.xreplace({**sample, self.v: sp.Rational(1, 2)})
        sign = -1 if at.is_number and bool(at < 0) else 1  # a monotone map: one sign throughout
        out = logq.xreplace({w: self.old_of_new}) + sp.log(sign * jac)
        if self.fold:
            out += sp.log(2)
        return clean(out, self.v, self.support)


@dataclass(frozen=True)
class Standardization:
    """A reduced variable w carried through `steps` onto a standard `law` of `v`."""

    steps: tuple
    law: GammaLaw | BetaLaw | NormalLaw
    v: sp.Symbol

    def carry(self, h, w):
        for step in self.steps:
            h, w = step.apply(h, w), step.v
        return over_common_denominator(h, self.v)

    def describe(self) -> str:
        return " → ".join([s.name for s in self.steps] + [str(self.law)])


# -- simplification on a support -------------------------------------------------------------------
def clean(expr, v, support: Interval):
    """Expand logs and powers using that v lies in the support, and write every log argument and
    every non-integer power base of a rational function of v as |c| v^i (1-v)^j (other factors kept)."""
    expr = sp.sympify(expr)
    if expr.has(sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch):
        expr = expr.rewrite(sp.exp)
    if support == REALS:  # nothing is positive here: only exact rewrites
        return sp.expand(sp.expand_log(expr))
    expr = expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].has(v),
                        lambda e: _log_monomial(e.args[0], v, support))
    expr = sp.powdenest(sp.expand_log(expr, force=True), force=True)
    expr = expr.replace(lambda e: isinstance(e, sp.log) and e.args[0].has(v),
                        lambda e: _log_monomial(e.args[0], v, support))
    expr = expr.replace(lambda e: e.is_Pow and not e.exp.is_Integer and e.base.has(v),
                        lambda e: _pow_monomial(e.base, e.exp, v, support))
    expr = expr.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.expand(e.args[0])))
    return sp.expand(sp.powsimp(sp.expand_log(expr, force=True), force=True))


def over_common_denominator(expr, v):
    """Σ tᵢ / D with D factored: terms of a rational function of v take the shape c·v^s(1-v)^t."""
    num, den = sp.fraction(sp.cancel(sp.together(expr)))
    den = sp.factor(den)
    return sp.Add(*[t / den for t in sp.Add.make_args(sp.expand(num))])


def _factors(arg, v, support: Interval):
    """arg as [(factor, exponent)], each factor v, 1-v or another positive expression, or None."""
    if not arg.is_rational_function(v):
        return None
    num, den = sp.fraction(sp.together(arg))
    (cn, fn), (cd, fd) = sp.factor_list(num, v), sp.factor_list(den, v)
    c, factors = cn / cd, fn + [(f, -e) for f, e in fd]
    out, sign = [], sp.sign(c.xreplace({s: 1 for s in c.free_symbols}))
    for f, e in factors:
        if f == v:
            out.append((v, e))
        elif support == UNIT and sp.expand(f - (v - 1)) == 0:
            out.append((1 - v, e))
            sign *= (-1) ** e
        elif support == UNIT and sp.expand(f - (1 - v)) == 0:
            out.append((1 - v, e))
        else:
            out.append((f, e))
    if sign == -1:  # the argument is positive on the support: one other odd factor changes sign
        odd = next((i for i, (f, e) in enumerate(out) if e % 2 and f not in (v, 1 - v)), None)
        if odd is None:
            return None
        out[odd] = (sp.expand(-out[odd][0]), out[odd][1])
    return abs(c), out


def _log_monomial(arg, v, support: Interval):
    parts = _factors(arg, v, support)
    if parts is None:
        return sp.log(arg)
    c, factors = parts
    return sp.log(c) + sp.Add(*[e * sp.log(f) for f, e in factors])


def _pow_monomial(base, exp, v, support: Interval):
    parts = _factors(base, v, support)
    if parts is None:
        return sp.Pow(base, exp)
    c, factors = parts
    return c ** exp * sp.Mul(*[sp.Pow(f, e * exp) for f, e in factors])


# -- recognising a standard law ------------------------------------------------------------------
def _statistics(logq, v) -> dict | None:
    """{statistic: coefficient} with log q = Σ c T(v) + const, or None if a term is not c·T(v)."""
    out: dict = {}
    for term in sp.Add.make_args(sp.expand(logq)):
        if not term.has(v):
            continue
        coeff, part = term.as_independent(v, as_Add=False)
        number, core = part.as_coeff_Mul()
        out[core] = out.get(core, 0) + coeff * number
    return {k: sp.simplify(c) for k, c in out.items() if sp.simplify(c) != 0}


def match_law(logq, v, support: Interval, sample: dict):
    """The standard law whose log-density is log q (up to its normalizing constant), else None."""
    stats = _statistics(logq, v)
    if stats is None:
        return None

    def positive(e):
        value = sp.sympify(sp.sympify(e).xreplace(sample))
        return value.is_number and bool(value > 0)
    if support == POSITIVE and set(stats) <= {sp.log(v), v} and v in stats:
        k, rate = sp.cancel(stats.get(sp.log(v), 0) + 1), sp.cancel(-stats[v])
        return GammaLaw(k, rate) if positive(k) and positive(rate) else None
    if support == UNIT and set(stats) <= {sp.log(v), sp.log(1 - v)}:
        a, b = sp.cancel(stats.get(sp.log(v), 0) + 1), sp.cancel(stats.get(sp.log(1 - v), 0) + 1)
        return BetaLaw(a, b) if positive(a) and positive(b) else None
    if support == REALS and set(stats) <= {v, v ** 2} and v ** 2 in stats:
        s2 = -1 / (2 * stats[v ** 2])
        return NormalLaw(sp.simplify(stats.get(v, 0) * s2), sp.simplify(s2)) if positive(s2) else None
    return None


# -- the search for a chain of steps ---------------------------------------------------------------
def standardize(logq, w, support: Interval, sample: dict) -> Standardization | None:
    """A chain of at most MAX_STEPS steps carrying the law exp(logq) of w onto a standard law."""
    return _search(clean(logq, w, support), w, support, sample, (), MAX_STEPS, set())


def _search(logq, w, support, sample, steps, depth, seen):
    law = match_law(logq, w, support, sample)
    if law is not None:
        return Standardization(steps, law, w)
    if depth == 0:
        return None
    for step in candidate_steps(logq, w, support, sample):
        new = step.log_density(logq, w, sample)
        key = (sp.srepr(new.xreplace({step.v: sp.Symbol("v_")})), step.support)
        if key in seen:
            continue
        seen.add(key)
        found = _search(new, step.v, step.support, sample, steps + (step,), depth - 1, seen)
        if found is not None:
            return found
    return None


def candidate_steps(logq, w, support: Interval, sample: dict) -> list:
    v_pos, v_real = sp.Dummy("v", positive=True), sp.Dummy("v", real=True)
    steps = []
    if support == REALS and _symmetric(logq, w):
        steps.append(Step("fold w ↦ w²", v_pos, sp.sqrt(v_pos), POSITIVE, fold=True))
    if support in (POSITIVE, UNIT):
        for c, p in _power_terms(logq, w, sample):
            if support == UNIT and (c != 1 or not _sign(p, sample) > 0):
                continue
            steps.append(Step(f"power w ↦ {c * w ** p}", v_pos, (v_pos / c) ** (1 / p), support))
    if support == POSITIVE and logq.has(sp.log(1 + w)):
        steps.append(Step("ratio w ↦ w/(1 + w)", v_pos, v_pos / (1 - v_pos), UNIT))
    if support in (REALS, POSITIVE):
        for c in _exp_rates(logq, w):
            if support == POSITIVE and not _sign(c, sample) < 0:
                continue
            steps.append(Step(f"exp w ↦ exp({c * w})", v_pos, sp.log(v_pos) / c,
                              POSITIVE if support == REALS else UNIT))
    if support == POSITIVE and any(isinstance(b, sp.log) and b.args[0] == w and e != 1 for b, e in
                                   (a.as_base_exp() for a in logq.atoms(sp.Pow))):
        steps.append(Step("log w ↦ log w", v_real, sp.exp(v_real), REALS))
    return steps


def _sign(e, sample):
    value = sp.sympify(sp.sympify(e).xreplace(sample))
    return float(value) if value.is_number else 0.0


def _symmetric(logq, w) -> bool:
    return sp.expand(logq - logq.xreplace({w: -w})) == 0 or \
        sp.simplify(logq - logq.xreplace({w: -w})) == 0


def _power_terms(logq, w, sample) -> list:
    """(c, p) for sub-expressions c·w^p (p ≠ 0; not plain w) with c free of w and positive."""
    found = []
    for node in sp.preorder_traversal(logq):
        if node.is_Add and node.has(w):  # c0 + c1 w^p: the candidate is (c1/c0) w^p
            c0, rest = node.as_independent(w, as_Add=True)
            if c0 == 0 or rest.is_Add:
                continue
            node = rest / c0
        if not (node.is_Mul or node.is_Pow) or not node.has(w):
            continue
        c, rest = node.as_independent(w, as_Add=False)
        base, p = rest.as_base_exp()
        if base != w or p == 0 or (p == 1 and c == 1) or p.has(w):
            continue
        if _sign(c, sample) > 0 and (c, p) not in found:
            found.append((c, p))
    found.sort(key=lambda cp: (cp[1] == 1, sp.count_ops(cp[0]) + sp.count_ops(cp[1])))
    return found[:6]


def _exp_rates(logq, w) -> list:
    rates = []
    for node in logq.atoms(sp.exp):
        arg = sp.expand(node.args[0])
        c = arg.coeff(w)
        if c != 0 and not c.has(w) and sp.expand(arg - c * w).has(w) is False and c not in rates:
            rates.append(c)
    return rates
