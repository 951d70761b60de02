"""Entries that symgeo keeps as an integral or a series (expectations with no closed form), evaluated
for numpy and torch, batched over parameter points, with an error estimate.

Integrals: double-exponential rules (tanh-sinh on a finite interval, exp-sinh on a half-line,
sinh-sinh on the line). The integrand is one generated function of (t, *params), evaluated on all
nodes × all batch points at once; levels halve the step until two successive levels agree to `rtol`
at every point (the difference is the error estimate; the rule converges so fast that the true
error is far smaller). In torch the result is a weighted sum of integrand values, so autograd
differentiates it under the integral sign. scipy.integrate.quad_vec would do the numpy side, but
it has no autograd and adapts per call, not per batch; one rule for both backends keeps them equal.

Series: blocks of terms summed until a block adds less than `rtol` of the total at every point; a
series that has not converged after MAX_TERMS terms is an error, not a number.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

RTOL = 1e-10
MAX_LEVEL = 8           # step 2^-8 · 0.5 at most
FIRST_STEP = 0.5
REACH = {
    "finite": 3.6,
    "half": 4.6,
    "line": 4.6,
}  # |u| range of the DE variable (nodes beyond are at the ends)
MAX_TERMS = 2 ** 20


class RepresentationError(ValueError):
    """An integral or series entry could not be evaluated to the requested tolerance."""


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
        self.atom, self.backend, self.rtol = atom, backend, rtol
        self.is_sum = isinstance(atom, sp.Sum)
        self.lo, self.hi = lo, hi
        self.fn = compile_fn((var, *args), [atom.function])

    def __call__(self, *values):
        return self._sum(values) if self.is_sum else self._integral(values)

    # -- integrals ----------------------------------------------------------------------------
    def _integral(self, values):
        xp = _namespace(self.backend)
        kind, a, b = _interval(self.lo, self.hi)
        total, previous = None, None
        for level in range(MAX_LEVEL + 1):
            u, t, w = _nodes(kind, a, b, level)
            part = self._weighted_sum(xp, u, t, w, values)
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

    def _weighted_sum(self, xp, u, t, w, values):
        """Σ f(t_i) w_i at every batch point. A first pass (no autograd) finds the contributions that
        matter; nodes where the integrand overflowed or underflowed to nothing are dropped, which is
        exact to far below `rtol` when the integrand had already decayed there (checked), and an
        error otherwise. The second pass (torch) evaluates at the kept nodes only, so no overflowed
        intermediate poisons the gradient."""
        shape = (-1,) + (1,) * _batch_ndim(values)
        tt, ww = _as(xp, t, values).reshape(shape), _as(xp, w, values).reshape(shape)
        if xp is np:
            with np.errstate(all="ignore"):  # overflow far in a tail is handled below
                f = self.fn(tt, *values)[0] + 0 * tt
            significant = _significant(f * ww, u, _spacing(u), self.atom)
            return np.where(significant, f * ww, 0.0).sum(0)
        with xp.no_grad():
            first = (self.fn(tt, *values)[0] + 0 * tt) * ww
        significant = xp.as_tensor(
            _significant(first.cpu().numpy(), u, _spacing(u), self.atom), device=tt.device
        )
        safe_t = xp.where(significant, tt, _as(xp, np.asarray(_middle(u, t)), values))
        f = self.fn(safe_t, *values)[0] + 0 * tt
        return xp.where(significant, f * ww, 0 * tt).sum(0)

    # -- series -------------------------------------------------------------------------------
    def _sum(self, values):
        xp = _namespace(self.backend)
        start = int(self.lo)
        stop = math.inf if self.hi == sp.oo else int(self.hi)
        total, k, size = 0, start, 256
        shape = (-1,) + (1,) * _batch_ndim(values)
        while k <= stop:
            ks = np.arange(k, min(k + size, stop + 1) if stop != math.inf else k + size, dtype=float)
            with np.errstate(all="ignore"):
                terms = self.fn(_as(xp, ks, values).reshape(shape), *values)[0]
            terms = terms + 0 * _as(xp, ks, values).reshape(shape)
            block = terms.sum(0)
            if not bool(_all(xp, xp.isfinite(block))):
                raise RepresentationError(
                    f"the series {self.atom} has a non-finite term at this parameter point"
                )
            total = total + block
            k += len(ks)
            if stop == math.inf:
                small = _all(xp, xp.abs(block) <= self.rtol * xp.abs(total) * 1e-2)
                if bool(small) and bool(_all(xp, xp.abs(terms[-1]) <= xp.abs(terms[0]))):
                    return total, _detach(xp.abs(block))
                if k - start >= MAX_TERMS:
                    raise RepresentationError(f"the series {self.atom} did not converge in {MAX_TERMS} terms "
                                              f"at this parameter point (a heavy tail)")
                size = min(size * 2, 65536)
        return total, _detach(0 * total)


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
DECAYED = 1e-14      # an overflow is harmless where the contributions just inside it are below this


def _significant(contrib: np.ndarray, u: np.ndarray, spacing: float, atom) -> np.ndarray:
    """Mask of (node, batch point) contributions kept; an error where the integrand is not finite
    at a node whose inward neighbours (within `spacing` in the DE variable u) still contribute."""
    finite = np.isfinite(contrib)
    mag = np.where(finite, np.abs(contrib), 0.0)
    total = mag.sum(0)
    shape = (-1,) + (1,) * (contrib.ndim - 1)
    for side in (u > 0, u <= 0):  # each tail on its own
        bad = ~finite & side.reshape(shape)
        if not bad.any():
            continue
        au = np.abs(u).reshape(shape)
        first_bad = np.where(bad, au, np.inf).min(0)
        near = finite & side.reshape(shape) & (au >= first_bad - spacing * 1.01)
        if np.any(np.where(near, mag, 0.0).max(0) > DECAYED * total):
            raise RepresentationError(f"the integrand of {atom} is not finite where it still contributes "
                                      f"at this parameter point")
    return finite & (mag > NEGLIGIBLE * total)


def _spacing(u):
    return float(np.min(np.diff(np.sort(u)))) if len(u) > 1 else 1.0


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


def _detach(x):
    return x.detach() if hasattr(x, "detach") else x
