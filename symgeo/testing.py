"""Check your own numeric code against symgeo's exact results, in your tests.

    from symgeo.testing import assert_matches, points
    assert_matches(my_gamma_fisher, "gamma", "fisher")          # fn(k, theta) -> (2, 2)
    assert_matches(my_kl, "normal", "kl")                        # fn(p1, p2), points as arrays
    assert_matches(my_renyi, "cauchy", "renyi", order=2)         # every divergence, every regular family
    assert_matches(my_fvp, "gamma", "fisher_vector_product")     # fn(k, theta, v) -> F v

    @given(points("gamma"))
    def test_my_fisher(point): ...

The reference is the exact SymPy formula evaluated by mpmath at doubling precision (symgeo.evaluate),
not generated floating-point code. Points cover the domain reproducibly: moderate values, values near
the boundaries and extreme scales. A failure names the point, the entry, the formula, both values, the
relative error and a line that reproduces it; a NaN or an infinity from the function under test fails.
Divergences of families that are not exponential families are compared with their declared closed
form or with quadrature at 20 and 30 digits (symgeo.divergence.divergence_at).
"""
from __future__ import annotations

import itertools
import math
import random

import sympy as sp

from .divergence import KINDS, ORDERED, divergence_at, entropy
from .errors import InvalidArgumentError, NumericalError
from .evaluate import value_at
from .family import Family
from .geometry import Geometry
from .load import as_family
from .regularity import support_points

PARAMETER_QUANTITIES = ("fisher", "inverse_fisher", "christoffel", "skewness", "natural_params",
                        "expectation_params", "log_partition", "entropy", "mean", "variance")
VECTOR_QUANTITIES = ("fisher_vector_product", "natural_gradient")  # fn(*params, v) -> F v, F⁻¹ v
PAIR_QUANTITIES = (*KINDS, "distance")  # fn(p1, p2); the Fisher–Rao distance where its closed form is known
QUANTITIES = PARAMETER_QUANTITIES + VECTOR_QUANTITIES + ("log_density", "score") + PAIR_QUANTITIES
EXTREMES = (1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1e3)


def sample_points(family, n: int = 20, *, chart=None, seed: int = 0) -> list[dict]:
    """n points of the parameter domain {name: float}: a grid of edge and extreme values of each
    parameter (the others at a moderate value), then seeded random ones; all satisfy the constraints."""
    fam = as_family(family, chart)
    rng = random.Random(seed)
    out, base = [], {str(p): float(v) for p, v in fam.sample_point(0).items() if p in fam.params}
    for p in fam.params:
        for value in _edge_values(fam.domains[p]):
            _keep(fam, {**base, str(p): value}, out)
    for _ in range(50 * n):
        if len(out) >= 2 * n:
            break
        _keep(fam, {str(p): _random_value(fam.domains[p], rng) for p in fam.params}, out)
    rng.shuffle(out)
    return out[:n]


def _keep(fam: Family, point: dict, out: list) -> None:
    try:
        fam.check_point(point)
    except (InvalidArgumentError, ValueError):
        return
    if point not in out:
        out.append(point)


def _edge_values(domain) -> list:
    lo, hi = float(domain.inf), float(domain.sup)
    if math.isfinite(lo) and math.isfinite(hi):
        return [lo + (hi - lo) * f for f in (1e-6, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-6)]
    if math.isfinite(lo):
        return [lo + e for e in EXTREMES]
    if math.isfinite(hi):
        return [hi - e for e in EXTREMES]
    return [s * e for e in EXTREMES for s in (1, -1)] + [0.0]


def _random_value(domain, rng: random.Random) -> float:
    lo, hi = float(domain.inf), float(domain.sup)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo + (hi - lo) * rng.uniform(1e-6, 1 - 1e-6)
    scale = 10 ** rng.uniform(-3, 3)
    if math.isfinite(lo):
        return lo + scale
    if math.isfinite(hi):
        return hi - scale
    return rng.choice((-1, 1)) * scale


def points(family, chart=None):
    """A hypothesis strategy of parameter points {name: float} inside the domain (edges included)."""
    from hypothesis import strategies as st
    fam = as_family(family, chart)
    grid = sample_points(fam, 200, seed=1)
    return st.sampled_from(grid) if grid else st.nothing()


def pairs(family, chart=None):
    """A hypothesis strategy of two points, for divergences."""
    from hypothesis import strategies as st
    return st.tuples(points(family, chart), points(family, chart))


# -- the comparison ------------------------------------------------------------------------------------
def assert_matches(fn, family, quantity: str, *, chart=None, rtol: float = 1e-8, atol: float = 0.0,
                   points=None, n: int = 20, seed: int = 0, order=None) -> int:
    """Raise AssertionError unless fn agrees with symgeo's exact `quantity` at every point (the message
    of the first disagreement, with how many others); returns the number of comparisons. See `compare`."""
    report = compare(fn, family, quantity, chart=chart, rtol=rtol, atol=atol, points=points, n=n, seed=seed,
                     order=order)
    if report.failures:
        more = len(report.failures) - 1
        raise AssertionError(report.failures[0] + (f"\n  ({more} more disagreement(s))" if more else ""))
    return report.comparisons


def compare(fn, family, quantity: str, *, chart=None, rtol: float = 1e-8, atol: float = 0.0,
            points=None, n: int = 20, seed: int = 0, order=None) -> Report:
    """fn against symgeo's exact `quantity` at every point: the comparisons, the largest relative error
    and a message per disagreement (a NaN, an infinity or an exception from fn is one).

    fn takes the parameters in the family's order (fn(*params)); for log_density and score it takes
    the variable first (fn(x, *params)), x running over points of the support; for
    fisher_vector_product (F v) and natural_gradient (F⁻¹ g, the natural gradient of a loss whose
    gradient in the parameters is g) it takes a vector last (fn(*params, v)), v seeded random vectors;
    for a divergence (kl, reverse_kl, jeffreys, renyi and alpha with `order`, bhattacharyya,
    hellinger_squared) it takes two parameter arrays (fn(p1, p2)). Returns the number of comparisons."""
    if quantity not in QUANTITIES:
        raise InvalidArgumentError(f"quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}")
    if (order is not None) != (quantity in ORDERED):
        raise InvalidArgumentError(f"order= is given for renyi and alpha only, and needed there ({quantity})")
    fam = as_family(family, chart)
    geo = Geometry(fam)
    chosen = list(points) if points is not None else sample_points(fam, n, seed=seed)
    report = Report(fam.name, quantity, rtol, atol)
    if quantity in PAIR_QUANTITIES:
        for first, second in itertools.islice(itertools.permutations(chosen, 2), n):
            _compare_divergence(fn, geo, quantity, order, first, second, report)
        return report
    formulas = _formulas(geo, quantity)
    conditions = _moments(geo)["conditions"][quantity] if quantity in ("mean", "variance") else []
    rng = random.Random(seed)
    for point in chosen:
        exact_point = _exact(fam, point)
        if not _exists_at(conditions, exact_point):
            report.undefined += 1
            continue
        if quantity in VECTOR_QUANTITIES:
            vector = point.get("v") or [round(rng.uniform(-1, 1), 6) for _ in fam.params]  # "v" to reproduce
            shown = {**point, "v": vector}
            got = report.call(fn, shown, *[point[str(p)] for p in fam.params], _array(vector))
            product = formulas * sp.Matrix([sp.Rational(str(v)) for v in vector])
            _compare(sp.Array(list(product)), exact_point, got, shown, report)
        elif quantity in ("log_density", "score"):
            for x in _support_values(fam):
                got = report.call(fn, point, x, *[point[str(p)] for p in fam.params])
                _compare(
                    formulas, {**exact_point, fam.variables[0]: sp.nsimplify(x)}, got, point, report, x=x
                )
        else:
            got = report.call(fn, point, *[point[str(p)] for p in fam.params])
            _compare(formulas, exact_point, got, point, report)
    return report


def _formulas(geo: Geometry, quantity: str):
    fam = geo.family
    if quantity in VECTOR_QUANTITIES:
        return geo.fisher if quantity == "fisher_vector_product" else geo.inverse_fisher
    if quantity in ("fisher", "inverse_fisher", "christoffel", "skewness"):
        return {"fisher": geo.fisher, "inverse_fisher": geo.inverse_fisher, "christoffel": geo.christoffel(),
                "skewness": geo.skewness}[quantity]
    if quantity == "log_density":
        return sp.Array([fam.log_density])
    if quantity == "score":
        return sp.Array([sp.diff(fam.log_density, p) for p in fam.params])
    if quantity == "entropy":
        return sp.Array([entropy(geo)])
    if quantity in ("mean", "variance"):
        return _moments(geo)[quantity]
    ef = geo.exponential_family
    if ef is None:
        raise InvalidArgumentError(f"{fam.name} is not an exponential family: no {quantity}")
    return {"natural_params": sp.Array(list(ef.natural_of_params)),
            "expectation_params": sp.Array(list(geo.expectation_params)),
            "log_partition": sp.Array([ef.log_partition_of_params])}[quantity]


def _moments(geo: Geometry) -> dict:
    """E[x] and Var[x] (componentwise for several variables) from the expectation engine, with the
    conditions on the parameters for them to be finite."""
    return geo.extension("testing", "moments", lambda: _derive_moments(geo))


def _derive_moments(geo: Geometry) -> dict:
    from .expectation import expectations
    fam = geo.family
    first = expectations(fam, list(fam.variables), geo.timeout)
    second = expectations(fam, [v ** 2 for v in fam.variables], geo.timeout)
    return {"mean": sp.Array([sp.simplify(m) for m in first.values]),
            "variance": sp.Array([sp.simplify(s2 - m ** 2) for m, s2 in zip(first.values, second.values)]),
            "conditions": {"mean": first.conditions, "variance": first.conditions + second.conditions}}


def _exists_at(conditions: list, point: dict) -> bool:
    """Whether the conditions for a moment to be finite hold at the point (E[x²] of an inverse gamma
    needs a > 2: beyond, the variance is infinite and its formula means nothing)."""
    return all(bool(c.xreplace(point)) for c in conditions)


def _pair_reference(geo: Geometry, kind: str, first: dict, second: dict, order):
    if kind != "distance":
        return divergence_at(geo, kind, first, second, order)
    from .distance import closed_form_distance
    form = closed_form_distance(geo)
    if form is None:
        raise InvalidArgumentError(f"{geo.family.name}: no closed-form Fisher–Rao distance is known here "
                                   f"(numeric.geodesic solves the boundary-value problem)")
    point = {**dict(zip(form.first, (first[p] for p in geo.params))),
             **dict(zip(form.second, (second[p] for p in geo.params)))}
    from .divergence import CLOSED, Divergence
    return Divergence("distance", value_at(form.expr, point), CLOSED, form.expr, point)


def _exact(fam: Family, point: dict) -> dict:
    return {p: sp.Rational(point[str(p)]) for p in fam.params}


def _support_values(fam: Family) -> list:
    (x,) = fam.variables if len(fam.variables) == 1 else (None,)
    if x is None:
        raise InvalidArgumentError(f"{fam.name}: log_density and score are checked for one variable only")
    return [float(v) for v in support_points(fam.support)]


class Report:
    """What `compare` found: comparisons made, the largest relative error, one message per disagreement."""

    def __init__(self, family: str, quantity: str, rtol: float, atol: float):
        self.family, self.quantity, self.rtol, self.atol = family, quantity, rtol, atol
        self.comparisons, self.max_relative, self.failures = 0, 0.0, []
        self.undefined = 0  # points where symgeo's quantity is infinite (a moment that does not exist)

    @property
    def passed(self) -> bool:
        return not self.failures

    def call(self, fn, shown: dict, *args):
        """fn(*args), or None with a failure recorded when it raises."""
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001 (the code under test failing is a finding, not a crash)
            self.failures.append(f"{self.quantity} of {self.family} at {_where(shown)}: the function raised "
                                 f"{type(err).__name__}: {err}")
            return None

    def record(self, value: float, exact: float, tolerance: float, describe) -> None:
        """One comparison; describe(relative error) gives the message when it disagrees."""
        self.comparisons += 1
        relative = abs(value - exact) / abs(exact) if exact else abs(value - exact)
        relative = relative if math.isfinite(value) else math.inf
        self.max_relative = max(self.max_relative, relative)
        if not math.isfinite(value) or abs(value - exact) > tolerance:
            self.failures.append(describe(relative))


def _where(shown: dict, x=None) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ("" if x is None else f", x={x!r}")


def _compare(formulas, point, got, shown, report: Report, x=None) -> None:
    import numpy as np
    if got is None:
        return  # it raised: recorded
    expected_shape = tuple(formulas.shape) if hasattr(formulas, "shape") else ()
    flat = list(sp.flatten(formulas.tolist())) if expected_shape else [formulas]
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError) as err:
        report.failures.append(f"{report.quantity} of {report.family} at {_where(shown, x)}: the function "
                               f"returned something that is not an array of numbers ({err})")
        return
    if got.size != len(flat):
        report.failures.append(
            f"{report.quantity} of {report.family}: the function returned shape {got.shape}, "
            f"symgeo's is {expected_shape}"
        )
        return
    for index, (formula, value) in enumerate(zip(flat, got.reshape(-1).tolist())):
        try:
            exact = value_at(formula, point) if formula.free_symbols else float(formula)
        except NumericalError:
            continue  # symgeo's own value is not a finite real here: nothing to compare
        entry = tuple(int(i) for i in np.unravel_index(index, got.shape)) if got.shape else ()

        def describe(relative, formula=formula, value=value, exact=exact, entry=entry):
            return (
                f"{report.quantity} of {report.family} at {_where(shown, x)}, entry {entry}: got {value!r}, "
                f"symgeo's exact value is {exact!r} (formula {formula}); relative error {relative:.3g} > "
                f"rtol {report.rtol:g}\n  reproduce: symgeo.testing.assert_matches(fn, {report.family!r}, "
                f"{report.quantity!r}, points=[{shown!r}])"
            )
        report.record(value, exact, report.atol + report.rtol * abs(exact), describe)


def _array(values):
    import numpy as np
    return np.array(values, dtype=float)


def _compare_divergence(
    fn, geo: Geometry, kind: str, order, first: dict, second: dict, report: Report
) -> None:
    fam = geo.family
    try:
        reference = _pair_reference(geo, kind, _exact(fam, first), _exact(fam, second), order)
    except NumericalError:
        return  # not finite there (an infinite Rényi divergence): nothing to compare
    exact = reference.value
    got = report.call(fn, {"p1": first, "p2": second}, _array([first[str(p)] for p in fam.params]),
                      _array([second[str(p)] for p in fam.params]))
    if got is None:
        return
    try:
        value = float(_array(got))
    except (TypeError, ValueError) as err:
        report.failures.append(f"{kind} of {fam.name} from {first} to {second}: not a number ({err})")
        return

    def describe(relative):
        how = f"formula {reference.formula}" if reference.formula is not None else \
            f"quadrature, error ≈ {reference.error:.1e}"
        extra = "" if order is None else f", order={order!r}"
        return (f"{kind} of {fam.name} from {first} to {second}: got {value!r}, symgeo's value is {exact!r} "
                f"({reference.method}: {how}); relative error {relative:.3g}\n  reproduce: "
                f"symgeo.testing.assert_matches(fn, {fam.name!r}, {kind!r}, points=[{first!r}, {second!r}], "
                f"n=2{extra})")
    report.record(value, exact, report.atol + report.rtol * abs(exact) + reference.error, describe)


def __getattr__(name):  # the torch helpers, imported only when asked for
    if name in ("assert_fvp_matches", "exact_ggn"):
        from . import testing_torch
        return getattr(testing_torch, name)
    raise AttributeError(f"module 'symgeo.testing' has no attribute {name!r}")
