"""Entries that symgeo keeps as an integral or a series (expectations with no closed form), evaluated
for numpy and torch, batched over parameter points, with an error estimate.

Integrals: double-exponential rules (tanh-sinh on a finite interval, exp-sinh on a half-line,
sinh-sinh on the line). The integrand is one generated function of (t, *params), evaluated on all
nodes × all batch points at once; levels halve the step until two successive levels agree to `rtol`
at every point (the difference is the error estimate; the rule converges so fast that the true
error is far smaller). In torch the result is a weighted sum of integrand values, so autograd
differentiates it under the integral sign. scipy.integrate.quad_vec would do the numpy side, but
it has no autograd and adapts per call, not per batch; one rule for both backends keeps them equal.

Series: blocks of terms summed until a block adds less than `rtol` of the total at every point; one that
has not converged after PRECISE_AFTER terms (terms decaying like a power) is summed by symgeo's own
summation at a working precision, point by point; one that does not settle there is an error, not a number.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from symgeo.errors import NumericalError, SymgeoError
from symgeo.evaluate import value_at

RTOL = 1e-10
MAX_LEVEL = 8           # step 2^-8 · 0.5 at most
FIRST_STEP = 0.5
REACH = {
    "finite": 3.6,
    "half": 4.6,
    "line": 4.6,
}  # |u| range of the DE variable (nodes beyond are at the ends)
PRECISE_AFTER = 2 ** 16  # a series not converged after this many terms is summed at a working precision


class RepresentationError(NumericalError, ValueError):
    """An integral or series entry could not be evaluated to the requested tolerance (a NumericalError:
    the CLI says so in one line, not as an internal error)."""


def atoms(exprs) -> list:
    """The Integral and Sum atoms of some expressions, in a fixed order."""
    found = set()
    for e in exprs:
        found |= sp.sympify(e).atoms(sp.Integral, sp.Sum)
    return sorted(found, key=sp.default_sort_key)


class Represented:
    """One Integral/Sum atom as a batched function of `args`: call → (value, error estimate)."""

    def __init__(self, atom, args, backend: str, compile_fn, rtol: float = RTOL):
        (var, lo, hi), = atom.limits
        if (lo.free_symbols | hi.free_symbols) & set(args):
            raise NotImplementedError(f"limits that depend on parameters: {atom}")
        self.atom, self.backend, self.rtol, self.args = atom, backend, rtol, tuple(args)
        self.is_sum = isinstance(atom, sp.Sum)
        self.lo, self.hi = lo, hi
        function = atom.function
        if self.is_sum and lo.is_integer and lo >= 0:  # the index's sign, for the generated code's Γ products
            known = {"positive": True} if lo >= 1 else {"nonnegative": True}  # (positive=False would mean 0)
            index = sp.Dummy(str(var), integer=True, **known)
            var, function = index, function.xreplace({var: index})
        self.fn = compile_fn((var, *args), [function])

    def __call__(self, *values):
        return self._sum(values) if self.is_sum else self._integral(values)

    # -- integrals ----------------------------------------------------------------------------
    def _integral(self, values):
        xp = _namespace(self.backend)
        kind, a, b = _interval(self.lo, self.hi)
        total, previous, seen = None, None, []
        for level in range(MAX_LEVEL + 1):
            u, t, w = _nodes(kind, a, b, level)
            part = self._weighted_sum(xp, u, t, w, values, seen, FIRST_STEP / 2 ** level)
            total = part if total is None else total + part
            step = FIRST_STEP / 2 ** level
            estimate = total * step
            if previous is not None:
                error = xp.abs(estimate - previous)
                scale = xp.abs(estimate)
                if bool(_all(xp, error <= self.rtol * scale + 1e-300)):
                    return estimate, _detach(error)
            previous = estimate
        worst = float(_max(xp, error / (scale + 1e-300)))
        raise RepresentationError(f"the integral {self.atom} did not converge to rtol {self.rtol:g} "
                                  f"(relative change {worst:.1e} at the finest step)")

    def _weighted_sum(self, xp, u, t, w, values, seen, step):
        """Σ f(t_i) w_i at every batch point. A first pass (no autograd) finds the contributions that
        matter; nodes where the integrand overflowed or underflowed to nothing are dropped, which is
        exact to far below `rtol` when the integrand had already decayed there (checked against the
        nodes of this level and the earlier ones, `seen`: [(u, contributions)], `step` apart), and an
        error otherwise. The second pass (torch) evaluates at the kept nodes only, so no overflowed
        intermediate poisons the gradient."""
        shape = (-1,) + (1,) * _batch_ndim(values)
        tt, ww = _as(xp, t, values).reshape(shape), _as(xp, w, values).reshape(shape)
        if xp is np:
            with np.errstate(all="ignore"):  # overflow far in a tail is handled below
                f = self.fn(tt, *values)[0] + 0 * tt
            significant = _significant(f * ww, u, step, self.atom, seen)
            return np.where(significant, f * ww, 0.0).sum(0)
        with xp.no_grad():
            first = (self.fn(tt, *values)[0] + 0 * tt) * ww
        keep = _significant(first.cpu().numpy(), u, step, self.atom, seen)
        significant = xp.as_tensor(keep, device=tt.device)
        safe_t = xp.where(significant, tt, _as(xp, np.asarray(_middle(u, t)), values))
        f = self.fn(safe_t, *values)[0] + 0 * tt
        return xp.where(significant, f * ww, 0 * tt).sum(0)

    # -- series -------------------------------------------------------------------------------
    def _sum(self, values):
        xp = _namespace(self.backend)
        start = int(self.lo)
        stop = math.inf if self.hi == sp.oo else int(self.hi)
        total, k, size, recent = 0, start, 256, None
        shape = (-1,) + (1,) * _batch_ndim(values)
        while k <= stop:
            ks = np.arange(k, min(k + size, stop + 1) if stop != math.inf else k + size, dtype=float)
            terms, recent = self._terms(xp, ks, shape, values, total, recent)
            block = terms.sum(0)
            total = total + block
            k += len(ks)
            if stop == math.inf:
                small = _all(xp, xp.abs(block) <= self.rtol * xp.abs(total) * 1e-2)
                if bool(small) and bool(_all(xp, xp.abs(terms[-1]) <= xp.abs(terms[0]))):
                    return total, _detach(xp.abs(block))
                if k - start >= PRECISE_AFTER:
                    return self._precise(xp, values)
                size = min(size * 2, 65536)
        return total, _detach(0 * total)

    def _precise(self, xp, values):
        """A series whose terms decay too slowly to sum in floating point (like a power, as the
        Yule–Simon's): each batch point by symgeo's own summation at 20 and 30 digits
        (symgeo.evaluate.value_at, which checks that the two agree). Its values carry no gradient, so a
        torch call that needs one is refused."""
        if xp is not np and any(getattr(v, "requires_grad", False) for v in values):
            raise RepresentationError(f"the series {self.atom} converges too slowly to sum in floating point "
                                      f"here; its value at a working precision has no gradient (use the "
                                      f"numpy backend, or inputs without requires_grad)")
        arrays = np.broadcast_arrays(*[_numpy(v) for v in values])
        out = np.empty(arrays[0].shape)
        for index in np.ndindex(out.shape):
            point = {symbol: sp.Float(float(a[index]), 20) for symbol, a in zip(self.args, arrays)}
            try:
                out[index] = value_at(self.atom, point)
            except (ArithmeticError, ValueError, SymgeoError) as exc:
                raise RepresentationError(f"the series {self.atom} did not converge in floating point, nor "
                                          f"at a working precision: {exc}") from exc
        value = out if xp is np else _as(xp, out, values)
        return value, 0 * value

    def _terms(self, xp, ks, shape, values, total, recent):
        """(the block's terms, its last finite magnitudes). A term that is not finite in floating point
        (0/0 once a probability underflows, as the zero-inflated Poisson's p′²/p) counts as 0, with all
        after it, where the terms before it decay geometrically and their tail is below DECAYED of the sum
        (`_tail_below`); elsewhere it is an error. In torch the dropped terms are evaluated at the first index
        instead, so that no NaN reaches the gradient."""
        index = _as(xp, ks, values).reshape(shape)
        with np.errstate(all="ignore"):
            terms = self.fn(index, *values)[0] + 0 * index
        magnitude = np.abs(_numpy(terms))
        finite = np.isfinite(magnitude)
        if not finite.all():
            before = np.concatenate([recent, magnitude]) if recent is not None else magnitude
            offset = 0 if recent is None else len(recent)
            first_bad = np.where(finite, len(magnitude), np.arange(len(magnitude)).reshape(shape)).min(0)
            rows = np.arange(len(magnitude)).reshape(shape)
            earlier = np.where(rows < first_bad, np.nan_to_num(magnitude), 0.0)
            scale = np.abs(_numpy(total)) + earlier.sum(0)
            decayed = _tail_below(before, first_bad + offset, DECAYED * scale)
            if not np.all(decayed | (first_bad == len(magnitude))):
                raise RepresentationError(f"the series {self.atom} has a non-finite term at this parameter "
                                          f"point")
            keep = np.arange(len(magnitude)).reshape(shape) < first_bad
            mask = xp.as_tensor(keep, device=terms.device) if xp is not np else keep
            if xp is not np:
                safe = xp.where(mask, index, _as(xp, np.asarray(float(self.lo)), values))
                terms = self.fn(safe, *values)[0] + 0 * index
            terms = xp.where(mask, terms, 0 * terms) if xp is not np else np.where(keep, terms, 0.0)
            magnitude = np.where(keep, magnitude, 0.0)
        return terms, magnitude[-DECAY_WINDOW:]


# -- nodes and weights of the double-exponential rules -----------------------------------------
def _interval(lo, hi):
    if lo == -sp.oo and hi == sp.oo:
        return "line", 0.0, 0.0
    if hi == sp.oo:
        return "half", float(lo), 1.0
    if lo == -sp.oo:
        return "half", float(hi), -1.0
    return "finite", float(lo), float(hi)


_NODES: dict = {}


def _nodes(kind, a, b, level):
    """The nodes a level adds (level 0: all multiples of the first step; then the odd multiples of
    the halved step), clipped where they would round onto an end of the interval."""
    key = (kind, a, b, level)
    if key not in _NODES:
        h = FIRST_STEP / 2 ** level
        reach = REACH[kind]
        count = int(reach / h)
        u = np.arange(-count, count + 1) * h
        if level > 0:
            u = u[np.abs(np.round(u / h)) % 2 == 1]
        s = 0.5 * math.pi * np.sinh(u)
        ds = 0.5 * math.pi * np.cosh(u)
        if kind == "finite":
            r = (b - a) / 2
            near_end = r * 2 / (1 + np.exp(2 * np.abs(s)))  # distance to the nearer end, to full precision
            t, w = np.where(s < 0, a + near_end, b - near_end), r * ds / np.cosh(s) ** 2
            keep = (t > a) & (t < b)
        elif kind == "half":
            e = np.exp(s)
            t, w = a + b * e, ds * e
            keep = (t != a) & np.isfinite(t)
        else:
            t, w = np.sinh(s), ds * np.cosh(s)
            keep = np.isfinite(t)
        _NODES[key] = (u[keep], t[keep], w[keep])
    return _NODES[key]


NEGLIGIBLE = 1e-18   # a contribution below this fraction of the total is dropped
DECAYED = 1e-12      # a non-finite node is dropped where the decay inside puts it below this (rtol/100)
DECAY_WINDOW = 8     # the terms before a non-finite one whose decay bounds the tail dropped


def _significant(contrib: np.ndarray, u: np.ndarray, spacing: float, atom, seen: list) -> np.ndarray:
    """Mask of (node, batch point) contributions kept; an error where the integrand is not finite at a
    node whose inward neighbours (this level's nodes and the earlier levels' in `seen`, which this call
    extends, `spacing` apart in the DE variable u) show it would still contribute."""
    finite = np.isfinite(contrib)
    mag = np.where(finite, np.abs(contrib), 0.0)
    known_u = np.concatenate([u] + [old_u for old_u, _ in seen])
    known = np.concatenate([mag] + [old for _, old in seen])
    total = known.sum(0)
    shape = (-1,) + (1,) * (contrib.ndim - 1)
    for positive in (True, False):  # each tail on its own
        bad = ~finite & ((u > 0) == positive).reshape(shape)
        if not bad.any():
            continue
        first_bad = np.where(bad, np.abs(u).reshape(shape), np.inf).min(0)
        au = np.abs(known_u).reshape(shape)
        inside = ((known_u > 0) == positive).reshape(shape) & (au < first_bad) & (known > 0)
        nearest = np.where(inside & (au >= first_bad - spacing * 1.01), known, 0.0).max(0)
        next_in = np.where(inside & (au < first_bad - spacing * 1.01) & (au >= first_bad - spacing * 2.02),
                           known, 0.0).max(0)
        # what the bad node would contribute, continuing the decay from its two inward neighbours (the
        # rules decay doubly exponentially, so this overestimates); the nearest one alone without a second
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(next_in > 0, np.minimum(1.0, nearest / next_in), 1.0)
        if np.any(nearest * ratio > DECAYED * total):
            raise RepresentationError(f"the integrand of {atom} is not finite where it still contributes "
                                      f"at this parameter point")
    seen.append((u, mag))
    return finite & (mag > NEGLIGIBLE * total)


def _middle(u, t):
    return t[np.argmin(np.abs(u))]


# -- numpy / torch --------------------------------------------------------------------------------
def _namespace(backend):
    if backend == "torch":
        import torch
        return torch
    return np


def _batch_ndim(values) -> int:
    return max((len(getattr(v, "shape", ())) for v in values), default=0)


def _as(xp, array, values):
    if xp is np:
        return np.asarray(array, dtype=float)
    like = next((v for v in values if isinstance(v, xp.Tensor)), None)
    return xp.as_tensor(array, dtype=like.dtype if like is not None else xp.float64,
                        device=like.device if like is not None else None)


def _all(xp, x):
    return np.all(x) if xp is np else bool(x.all())


def _max(xp, x):
    return np.max(x) if xp is np else float(x.max())


def _tail_below(magnitudes: np.ndarray, stop, bound) -> np.ndarray:
    """Per batch point, whether the DECAY_WINDOW terms before row `stop` decay geometrically with a tail
    beyond them, |t| r / (1 − r) for the slowest ratio r, within `bound` (exact zeros count as decayed)."""
    count = DECAY_WINDOW
    enough = stop >= count
    rows = np.clip(stop - count + np.arange(count).reshape((-1,) + (1,) * np.ndim(stop)), 0, None)
    full = np.broadcast_to(magnitudes, (len(magnitudes),) + np.shape(stop))
    last = np.nan_to_num(np.take_along_axis(full, rows, axis=0), nan=np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(last[1:] / last[:-1], nan=0.0).max(0)
        tail = np.where(ratio < 1, last[-1] * ratio / (1 - ratio), np.inf)
    return enough & (np.where(last[-1] == 0, 0.0, tail) <= bound)


def _numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _detach(x):
    return x.detach() if hasattr(x, "detach") else x
