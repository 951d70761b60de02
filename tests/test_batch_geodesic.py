"""Batched distances and the per-row integrator against the one-pair solver, scipy and closed forms."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy.integrate import solve_ivp

from numeric import CompiledFamily
from numeric.batch_geodesic import BatchGeodesics, distances
from numeric.batch_ode import integrate_rows
from numeric.geodesic import GeodesicError, closed_form, distance
from symgeo import DomainError


@pytest.fixture(scope="module")
def compiled(geometry):
    memo = {}

    def get(name):
        if name not in memo:
            memo[name] = CompiledFamily(geometry(name))
        return memo[name]
    return get


def _pairs(rng, count, n, low=0.5, high=5.0):
    draw = lambda: np.exp(rng.uniform(np.log(low), np.log(high), (count, n)))  # noqa: E731
    return draw(), draw()


@pytest.mark.parametrize("name, n", [("gamma", 2), ("beta", 2), ("dirichlet:k=3", 3), ("inverse_gamma", 2)])
def test_batch_matches_the_one_pair_solver(name, n, compiled):
    c = compiled(name)
    x0, x1 = _pairs(np.random.default_rng(3), 12, n)
    got = distances(c, x0, x1)
    want = np.array([distance(c, a, b).value for a, b in zip(x0, x1)])
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_far_and_near_boundary_pairs_converge(compiled):
    c = compiled("gamma")
    x0 = np.array([[0.05, 40.0], [30.0, 0.05], [0.1, 0.1], [2.0, 1.0]])
    x1 = np.array([[40.0, 0.05], [0.06, 30.0], [20.0, 20.0], [2.0 + 1e-9, 1.0]])
    v, residual, converged = BatchGeodesics(c).log(x0, x1)
    assert converged.all(), residual
    want = np.array([distance(c, a, b).value for a, b in zip(x0, x1)])
    np.testing.assert_allclose(distances(c, x0, x1), want, rtol=1e-8, atol=1e-13)  # residuals are absolute


def test_relaxation_start_is_close_to_the_log_map(compiled):
    """The discretised BVP alone gives the initial velocity to O(h²) (independent of shooting)."""
    c = compiled("beta")
    x0, x1 = _pairs(np.random.default_rng(4), 20, 2)
    geo = BatchGeodesics(c)
    exact, _, converged = geo.log(x0, x1)
    assert converged.all()
    errors = {}
    for intervals in (16, 32):
        start, solved = geo.start(x0, x1, intervals)
        assert solved.all()
        errors[intervals] = np.abs(start - exact).max() / np.abs(exact).max()
    assert errors[32] < 5e-3
    assert 3 < errors[16] / errors[32] < 5  # second order: halving h quarters the error


def test_closed_form_and_one_parameter_families_use_their_exact_routes(compiled):
    normal = compiled("normal")
    a, b = np.array([[0.0, 1.0], [1.0, 2.0]]), np.array([[1.0, 1.0], [-1.0, 0.5]])
    np.testing.assert_allclose(distances(normal, a, b), closed_form(normal)(*a.T, *b.T), rtol=1e-14)
    exponential = compiled("exponential")
    np.testing.assert_allclose(distances(exponential, [[0.5], [2.0]], [[3.0], [2.0]]),
                               [abs(np.log(3.0 / 0.5)), 0.0], atol=1e-12)


def test_bad_input_is_refused(compiled):
    c = compiled("gamma")
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        distances(c, [[1.0, 1.0]], [[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(DomainError):
        distances(c, [[1.0, -1.0]], [[1.0, 1.0]])
    assert distances(c, np.empty((0, 2)), np.empty((0, 2))).shape == (0,)


def test_a_pair_nobody_can_solve_names_itself(compiled, monkeypatch):
    import numeric.batch_geodesic as batch
    c = compiled("gamma")
    monkeypatch.setattr(batch.BatchGeodesics, "log",
                        lambda self, x0, x1, tol: (x1 - x0, np.full(len(x0), np.inf), np.zeros(len(x0), bool)))

    def refuse(*args, **kwargs):
        raise GeodesicError("shooting did not converge")
    monkeypatch.setattr(batch, "distance", refuse)
    with pytest.raises(GeodesicError, match="pair 0 of 2"):
        distances(c, [[1.0, 1.0], [2.0, 2.0]], [[2.0, 1.0], [1.0, 3.0]])


POSITIVE = hs.floats(0.3, 5.0)


@settings(max_examples=6, deadline=None)
@given(hs.lists(hs.tuples(POSITIVE, POSITIVE), min_size=3, max_size=3))
def test_batched_distance_is_a_metric(points):
    from symgeo import Geometry, catalog
    c = CompiledFamily(Geometry(catalog.get("beta")))
    a, b, m = (np.array([p]) for p in points)
    ab = distances(c, np.vstack([a, b, a, m, a]), np.vstack([b, a, m, b, a]))
    assert ab[0] == pytest.approx(ab[1], rel=1e-8, abs=1e-12)
    assert ab[4] == 0.0
    assert ab[0] <= ab[2] + ab[3] + 1e-9


def test_integrate_rows_matches_solve_ivp_row_by_row():
    """Rows of very different stiffness, each with its own step, against scipy's DOP853 one at a time."""
    # z = (y, y', rate): f sees only the rows still running, so per-row constants live in the state
    z0 = np.array([[1.0, 0.0, 0.1], [0.5, 0.5, 1.0], [2.0, -1.0, 30.0]])
    got, ok = integrate_rows(lambda z: np.stack([z[:, 1], -z[:, 2] * np.sin(z[:, 0]), 0 * z[:, 2]], axis=1),
                             z0, t_end=2.0)
    assert ok.all()
    for start, end in zip(z0, got):
        ref = solve_ivp(lambda t, y, r=start[2]: [y[1], -r * np.sin(y[0])], (0, 2.0), start[:2], method="DOP853",
                        rtol=1e-13, atol=1e-13).y[:, -1]
        np.testing.assert_allclose(end[:2], ref, rtol=1e-9, atol=1e-11)


def test_grouped_rows_share_steps_so_differences_are_smooth():
    """Forward differences within a group are free of step-size noise: the difference quotient of
    y' = −y² at y0 and y0 + ε equals the exact derivative ∂y(1)/∂y0 = 1/(1 + y0)² to O(ε)."""
    eps, y0 = 1e-7, np.array([0.3, 1.0, 4.0])
    z0 = np.repeat(y0, 2)[:, None] + np.tile([0.0, eps], 3)[:, None]
    grouped, ok = integrate_rows(lambda z: -z ** 2, z0, rtol=1e-9, atol=1e-9, group=2)
    assert ok.all()
    quotient = (grouped[1::2, 0] - grouped[::2, 0]) / eps
    np.testing.assert_allclose(quotient, 1 / (1 + y0) ** 2, rtol=1e-5)
    with pytest.raises(ValueError, match="groups of 2"):
        integrate_rows(lambda z: -z, np.ones((3, 1)), group=2)
