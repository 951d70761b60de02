"""Check a family's symbolic results against independent numerics (`symgeo verify FAMILY`).

Checks, at two interior points:
- Fisher metric vs Monte Carlo E[s sᵀ], scores by torch autograd on the log-density, samples from
  scipy.stats (catalog families) or from a tabulated inverse CDF (one-variable spec families);
- log-density vs scipy.stats (catalog families);
- Christoffel symbols vs central differences of the generated metric;
- Fisher–Rao distance in the default chart vs another chart (natural chart, or log of positive parameters);
- KL (exponential families) vs Monte Carlo E[log p₁ − log p₂].
Monte Carlo checks pass when every entry is within 5 standard errors; the others have relative tolerances.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symgeo import Family, SymgeoError, duality
from symgeo.errors import InvalidArgumentError
from symgeo.family import log_chart
from symgeo.fisher import score
from symgeo.support import Interval, Region

from .codegen import generate
from .compiled import CompiledFamily
from .geodesic import distance
from .sampling import sampler, scipy_equivalent

Z_LIMIT = 5.0
MIN_SAMPLES = 1000  # below this the standard errors of E[s sᵀ] are themselves unreliable


@dataclass(frozen=True)
class Check:
    name: str
    point: str
    error: float  # max relative error (Monte Carlo checks also carry z)
    criterion: str
    passed: bool | None  # None: skipped
    detail: str = ""


@dataclass
class Report:
    family: str
    checks: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def table(self) -> str:
        rows = [("check", "point", "max rel. error", "criterion", "result")]
        for c in self.checks:
            status = "skipped" if c.passed is None else ("pass" if c.passed else "FAIL")
            error = "" if c.passed is None else f"{c.error:.2e}"
            rows.append((c.name, c.point, error, c.criterion, status + (f"  {c.detail}" if c.detail else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
        lines.append(f"{self.family}: {'all checks passed' if self.passed else 'FAILED'}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"family": self.family, "passed": self.passed,
                "checks": [c.__dict__ for c in self.checks]}


def verify(family, *, samples: int = 100_000, seed: int = 0) -> Report:
    """Run every applicable check; `family` is a catalog name, spec path, Family or Geometry."""
    if not (isinstance(samples, int) and samples >= MIN_SAMPLES):
        raise InvalidArgumentError(f"--samples must be an integer of at least {MIN_SAMPLES}, not {samples!r}")
    from .compiled import compile as compile_family
    compiled = family if isinstance(family, CompiledFamily) else compile_family(family)
    fam = compiled.family
    report = Report(f"{fam.name} ({fam.chart})")
    rng = np.random.default_rng(seed)
    points = _two_points(fam)
    draw = sampler(compiled)
    region = isinstance(fam.support, Region)
    for label, point in zip(("ξ₀", "ξ₁"), points):
        if region:  # no sampler for a region: nested quadrature instead of Monte Carlo
            report.checks += _region_checks(compiled, point, label)
        else:
            report.checks.append(_fisher_monte_carlo(compiled, draw, point, samples, rng, label))
        report.checks.append(_christoffel_differences(compiled, point, label))
    report.checks.append(_scipy_log_density(compiled, points[0], rng))
    report.checks.append(_distance_invariance(compiled, points))
    report.checks.append(_kl_monte_carlo(compiled, draw, points, samples, rng))
    return report


def assert_verified(family, **kwargs) -> Report:
    """pytest helper: raise AssertionError with the table unless every check passes."""
    report = verify(family, **kwargs)
    if not report.passed:
        raise AssertionError("\n" + report.table())
    return report


def _floats(fam: Family, point: dict) -> np.ndarray:
    return np.array([float(point[p]) for p in fam.params])


def _two_points(fam: Family) -> list:
    """Two distinct interior points: the family's sample points, the second moved if they coincide."""
    first, second = (_floats(fam, fam.sample_point(k)) for k in range(2))
    for factor in (1.3, 1.1, 1.03):
        if not np.allclose(first, second):
            break
        moved = np.where(first > 0, first * factor ** np.arange(1, first.size + 1) ** 0, first + factor - 1)
        moved = moved * np.where(np.arange(first.size) % 2 == 0, 1.0, 1 / factor)
        try:
            fam.check_point(dict(zip(fam.params, moved)))
            second = moved
        except SymgeoError:
            continue
    return [first, second]


def _z_check(name, label, estimate, stderr, exact) -> Check:
    if not (np.all(np.isfinite(estimate)) and np.all(np.isfinite(stderr)) and np.all(np.isfinite(exact))):
        return Check(name, label, float("nan"), f"≤ {Z_LIMIT:g} std. errors", False,
                     "(a Monte Carlo estimate or the formula is not finite)")
    diff = np.abs(estimate - exact)
    z = np.max(
        np.where(stderr > 0, diff / np.where(stderr > 0, stderr, 1), np.where(diff > 1e-12, np.inf, 0))
    )
    rel = float(np.max(diff) / max(np.max(np.abs(exact)), 1e-300))
    return Check(name, label, rel, f"≤ {Z_LIMIT:g} std. errors", bool(z <= Z_LIMIT), f"(max z = {z:.2f})")


# -- Monte Carlo Fisher with torch autograd ------------------------------------------------------
def _fisher_monte_carlo(compiled, sampler, point, samples, rng, label) -> Check:
    name = "Fisher vs Monte Carlo E[s sᵀ] (torch autograd)"
    if sampler is None:
        return Check(name, label, 0.0, "", None, "no sampler for this support")
    try:
        import torch
    except ImportError:
        return Check(name, label, 0.0, "", None, "torch not installed (pip install 'symgeo[torch]')")
    x = sampler(point, samples, rng)
    log_density = _torch_log_density(compiled)
    params = [torch.full((samples,), float(v), dtype=torch.float64, requires_grad=True) for v in point]
    variables = [torch.as_tensor(np.asarray(col), dtype=torch.float64) for col in x]
    total = log_density(*variables, *params).sum()
    scores = torch.stack(torch.autograd.grad(total, params), dim=-1).numpy()
    outer = scores[:, :, None] * scores[:, None, :]
    estimate, stderr = outer.mean(axis=0), outer.std(axis=0) / np.sqrt(samples)
    return _z_check(name, label, estimate, stderr, compiled.fisher(*point))


def _torch_log_density(compiled: CompiledFamily):
    return compiled.extension("verify.torch_log_density", lambda: CompiledFamily(
        compiled.geometry, "torch", fixed=compiled.fixed, check=False).log_density)


# -- several variables over a region --------------------------------------------------------------
def _region_checks(compiled: CompiledFamily, point, label) -> list:
    """The density's total mass and E[s sᵀ] by a tensor double-exponential rule over the region (each
    variable's range mapped from its nodes, inner ranges from the outer nodes), the score by SymPy's
    derivative of the declared log-density: not the route the metric came from."""
    fam = compiled.family
    mixed = not fam.support.discrete and not all(isinstance(r, Interval) for _, r in fam.support.ranges)
    if mixed:
        return [Check("Fisher vs quadrature E[s sᵀ] over the region", label, 0.0, "", None,
                      "counts mixed with continuous variables: no rule here")]
    at = dict(zip(fam.params, point))
    at.update({k: float(compiled.bind(v)) for k, v in fam.fixed.items()
               if isinstance(v, sp.Basic) and not v.is_number})
    n = fam.n
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    s = score(fam)
    exprs = [sp.Integer(1)] + [s[i] * s[j] for i, j in pairs]
    if fam.support.discrete:  # counts: direct sums
        from symgeo.expectation.region import region_expectation
        values, error = region_expectation(fam, exprs, {k: sp.Float(v, 30) for k, v in at.items()}), 0.0
    else:
        values, error = _region_quadrature(fam, exprs, at)
    mass = values[0]
    checks = [Check("density integrates to 1 (quadrature over the region)", label, abs(mass - 1), "≤ 1e-9",
                    bool(abs(mass - 1) <= 1e-9), f"(quadrature error ~{error:.0e})")]
    reference = np.empty((n, n))
    for (i, j), v in zip(pairs, values[1:]):
        reference[i, j] = reference[j, i] = v
    exact = compiled.fisher(*point)
    worst = float(np.max(np.abs(reference - exact)) / np.max(np.abs(exact)))
    checks.append(Check("Fisher vs quadrature E[s sᵀ] over the region", label, worst, "≤ 1e-7",
                        bool(worst <= 1e-7)))
    return checks


def _region_quadrature(fam, exprs, at, first_level: int = 3, last_level: int = 6):
    """[∫ e p] for each e, refining the step until two levels agree to 1e-11 (or the last level);
    returns (values, the last change)."""
    variables = [v for v, _ in fam.support.ranges]  # innermost first
    integrand = generate(variables, [e.xreplace(at) * sp.exp(fam.log_density.xreplace(at)) for e in exprs])
    previous = None
    for level in range(first_level, last_level + 1):
        nodes, weight = _region_nodes(fam.support.ranges, at, level)
        with np.errstate(all="ignore"):
            f = integrand(*nodes)
        f = np.where(np.isfinite(f), f, 0.0)  # an integrable end singularity hit after rounding
        values = np.einsum("k,ke->e", weight, f.reshape(len(weight), -1))
        if previous is not None:
            change = float(np.max(np.abs(values - previous)) / max(np.max(np.abs(values)), 1e-300))
            if change < 1e-11:
                return values, change
        previous = values
    return values, change


def _region_nodes(ranges, at, level):
    """Flattened node coordinates (innermost first) and weights of the tensor rule at `level`."""
    from .represented import FIRST_STEP
    columns, weight = {}, np.ones(1)
    for var, r in reversed(ranges):  # outermost first: the inner ends are functions of it
        u = _all_u(r, level)
        lo, hi = (_end(e, at, columns, weight.size) for e in (r.lo, r.hi))
        x, dx = _map(u, lo, hi, weight.size)  # shapes (outer nodes, this variable's nodes)
        columns = {v: np.repeat(c, u.size) for v, c in columns.items()}
        columns[var] = x.reshape(-1)
        weight = (weight[:, None] * dx * FIRST_STEP / 2 ** level).reshape(-1)
    return [columns[v] for v, _ in ranges], weight


def _all_u(r, level):
    from .represented import FIRST_STEP, REACH

    kind = (
        "finite"
        if r.lo.is_finite and r.hi.is_finite
        else ("line" if not (r.lo.is_finite or r.hi.is_finite) else "half")
    )
    h = FIRST_STEP / 2 ** level
    count = int(REACH[kind] / h)
    return np.arange(-count, count + 1) * h


def _end(expr, at, columns, size):
    if expr.is_infinite:
        return None
    value = generate(list(columns) or [sp.Dummy()], expr.xreplace(at))
    out = value(*columns.values()) if columns else np.full(1, float(expr.xreplace(at)))
    return np.broadcast_to(np.asarray(out, dtype=float), (size,))[:, None]


def _map(u, lo, hi, rows):
    """x and dx/du of the double-exponential map for each outer node (rows) and u (columns); distances
    to a finite end are formed directly, so (y − x) near x = y keeps its precision."""
    s, ds = 0.5 * np.pi * np.sinh(u), 0.5 * np.pi * np.cosh(u)
    if lo is not None and hi is not None:
        width = hi - lo
        near = 1 / (1 + np.exp(2 * np.abs(s)))
        x = np.where(u < 0, lo + width * near, hi - width * near)
        return x, width * ds / (2 * np.cosh(s) ** 2)
    if lo is not None:
        return lo + np.exp(s), np.broadcast_to(ds * np.exp(s), (rows,) + u.shape)
    if hi is not None:
        return hi - np.exp(s), np.broadcast_to(ds * np.exp(s), (rows,) + u.shape)
    return np.broadcast_to(np.sinh(s), (rows,) + u.shape), np.broadcast_to(ds * np.cosh(s), (rows,) + u.shape)


def _region_kl(compiled: CompiledFamily, points) -> Check:
    """KL(p₀‖p₁) = E₀[log p₀ − log p₁] by quadrature or sums over the region."""
    fam = compiled.family
    name = "KL vs quadrature E[log p₁ − log p₂] over the region"
    at = [dict(zip(fam.params, p)) for p in points]
    diff = fam.log_density.xreplace(at[0]) - fam.log_density.xreplace(at[1])
    if fam.support.discrete:
        from symgeo.expectation.region import region_expectation
        value = float(region_expectation(fam, diff, {k: sp.Float(v, 30) for k, v in at[0].items()}))
    elif all(isinstance(r, Interval) for _, r in fam.support.ranges):
        value = float(_region_quadrature(fam, [diff], at[0])[0][0])
    else:
        return Check(name, "ξ₀‖ξ₁", 0.0, "", None, "counts mixed with continuous variables: no rule here")
    exact = float(compiled.kl(*points[0], *points[1]))
    error = abs(value - exact) / max(abs(exact), 1e-300)
    return Check(name, "ξ₀‖ξ₁", error, "≤ 1e-8", error <= 1e-8)


# -- other checks --------------------------------------------------------------------------------
def _christoffel_differences(compiled: CompiledFamily, point, label) -> Check:
    """Γ^k_ij from central differences of the generated metric: ½ g^{kl}(∂_i g_jl + ∂_j g_il − ∂_l g_ij)."""
    n = compiled.n
    g = compiled.fisher
    dg = np.empty((n, n, n))
    for m in range(n):
        h = 1e-5 * max(1.0, abs(point[m]))
        up, down = point.copy(), point.copy()
        up[m] += h
        down[m] -= h
        dg[m] = (g(*up) - g(*down)) / (2 * h)
    first = 0.5 * (np.einsum("ijl->ijl", dg) + np.einsum("jil->ijl", dg) - np.einsum("lij->ijl", dg))
    estimate = np.einsum("kl,ijl->kij", np.linalg.inv(g(*point)), first)
    exact = compiled.christoffel(*point)
    scale = max(np.abs(exact).max(), 1e-3)  # Γ may vanish at a point (binomial at p = ½)
    error = float(np.abs(estimate - exact).max() / scale)
    return Check("Christoffel vs finite differences of g", label, error, "≤ 1e-6", error <= 1e-6)


def _scipy_log_density(compiled: CompiledFamily, point, rng) -> Check:
    name = "log-density vs scipy.stats"
    build = scipy_equivalent(compiled)
    if build is None:
        return Check(name, "ξ₀", 0.0, "", None, "no scipy.stats equivalent declared with the family")
    logp, sample = build(point)
    cols = sample(2000, rng)
    want = np.asarray(logp(cols), dtype=float)
    got = compiled.log_density(*cols, *point)
    error = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
    return Check(name, "ξ₀", error, "≤ 1e-9", error <= 1e-9)


def _other_chart(compiled: CompiledFamily):
    """(Geometry in another chart, map of points) — the natural chart, else logs of positive parameters."""
    geo = compiled.geometry
    ef = geo.exponential_family
    chart = duality.natural_chart(geo) if ef is not None else log_chart(geo.family)
    if chart is None:
        return None
    forward = generate(geo.params, compiled.bind([e for _, e in chart.forward]))
    return geo.in_chart(chart), (lambda x: forward(*x))


CHART_SECONDS = 60.0  # the second chart's geometry is derived from scratch: bounded


def _distance_invariance(compiled: CompiledFamily, points) -> Check:
    name = "distance invariant under a change of chart"
    from symgeo.timebound import TimeBoundExceeded, call_with_timeout
    try:
        return call_with_timeout(_distance_in_two_charts, (compiled, points), CHART_SECONDS)
    except TimeBoundExceeded:
        return Check(name, "ξ₀→ξ₁", 0.0, "", None,
                     f"the second chart's geometry did not finish within {CHART_SECONDS:g} s")
    except RuntimeError as exc:
        return Check(name, "ξ₀→ξ₁", float("nan"), "≤ 1e-7", False, f"({exc})")


def _distance_in_two_charts(compiled: CompiledFamily, points) -> Check:
    name = "distance invariant under a change of chart"
    try:
        other = _other_chart(compiled)
    except SymgeoError as exc:
        return Check(name, "ξ₀→ξ₁", 0.0, "", None, f"no second chart ({exc})")
    if other is None:
        return Check(name, "ξ₀→ξ₁", 0.0, "", None, "no second chart")
    geo, forward = other
    try:
        here = distance(compiled, *points).value
        there = distance(
            CompiledFamily(geo, fixed=compiled.fixed), forward(points[0]), forward(points[1])
        ).value
    except SymgeoError as exc:
        return Check(name, "ξ₀→ξ₁", 0.0, "", None, str(exc))
    error = abs(here - there) / max(here, 1e-300)
    return Check(
        name, "ξ₀→ξ₁", error, "≤ 1e-7", error <= 1e-7, f"(d = {here:.10g}, {geo.family.chart} chart)"
    )


def _kl_monte_carlo(compiled: CompiledFamily, sampler, points, samples, rng) -> Check:
    name = "KL vs Monte Carlo E[log p₁ − log p₂]"
    if compiled.geometry.exponential_family is None:
        return Check(name, "ξ₀‖ξ₁", 0.0, "", None, "no closed-form KL (not an exponential family)")
    if isinstance(compiled.family.support, Region):
        return _region_kl(compiled, points)
    if sampler is None:
        return Check(name, "ξ₀‖ξ₁", 0.0, "", None, "no sampler for this support")
    x = sampler(points[0], samples, rng)
    diff = compiled.log_density(*x, *points[0]) - compiled.log_density(*x, *points[1])
    estimate, stderr = np.array(diff.mean()), np.array(diff.std() / np.sqrt(samples))
    return _z_check(name, "ξ₀‖ξ₁", estimate, stderr, np.array(compiled.kl(*points[0], *points[1])))
