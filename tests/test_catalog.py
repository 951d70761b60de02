"""Every catalog family against a published closed form."""
import pytest
import sympy as sp

from symgeo import catalog

S = sp.Symbol
pos = dict(positive=True)
mu, sigma, lam, p, k, theta, a, b = (S("mu", real=True), S("sigma", **pos), S("lam", **pos), S("p", **pos),
                                     S("k", **pos), S("theta", **pos), S("a", **pos), S("b", **pos))
tg = sp.polygamma
n_, r_ = S("n", positive=True, integer=True), S("r", **pos)
kappa, x0, gam, s_, beta_rate = S("kappa", **pos), S("x0", real=True), S("gamma", **pos), S("s", **pos), S("beta", **pos)
A1 = sp.besseli(1, kappa) / sp.besseli(0, kappa)

# name: (Fisher metric, scalar curvature or None, source)
CLOSED_FORMS = {
    "normal": (sp.diag(1 / sigma**2, 2 / sigma**2), -1, "Rao 1945; Amari & Nagaoka 2000 §2.1"),
    "lognormal": (sp.diag(1 / sigma**2, 2 / sigma**2), -1, "log-transform of the normal"),
    "bernoulli": (sp.Matrix([[1 / (p * (1 - p))]]), 0, "standard"),
    "binomial": (sp.Matrix([[n_ / (p * (1 - p))]]), 0, "standard"),
    "poisson": (sp.Matrix([[1 / lam]]), 0, "Lehmann & Casella 1998"),
    "geometric": (sp.Matrix([[1 / (p**2 * (1 - p))]]), 0, "standard"),
    "negative_binomial": (sp.Matrix([[r_ / (p**2 * (1 - p))]]), 0, "standard"),
    "exponential": (sp.Matrix([[1 / lam**2]]), 0, "standard"),
    "rayleigh": (sp.Matrix([[4 / sigma**2]]), 0, "standard"),
    "gamma": (sp.Matrix([[tg(1, k), 1 / theta], [1 / theta, k / theta**2]]),
              (tg(1, k) + k * tg(2, k)) / (2 * (k * tg(1, k) - 1) ** 2), "Arwini & Dodson 2008 §3"),
    "inverse_gamma": (sp.Matrix([[tg(1, a), -1 / b], [-1 / b, a / b**2]]), None, "standard"),
    "beta": (sp.Matrix([[tg(1, a) - tg(1, a + b), -tg(1, a + b)], [-tg(1, a + b), tg(1, b) - tg(1, a + b)]]),
             None, "Hessian of log B(a, b)"),
    "inverse_gaussian": (sp.diag(lam / mu**3, 1 / (2 * lam**2)), None, "standard"),
    "von_mises": (sp.diag(kappa * A1, 1 - A1 / kappa - A1**2), None, "Mardia & Jupp 2000"),
    "cauchy": (sp.eye(2) / (2 * gam**2), -4, "Mitchell 1989: K = -2"),
    "student_t": (sp.diag(sp.Rational(6, 8) / sigma**2, sp.Rational(10, 8) / sigma**2), None,
                  "(nu+1)/((nu+3) sigma^2), 2 nu/((nu+3) sigma^2), nu = 5"),
    "weibull": (sp.Matrix([[((1 - sp.EulerGamma) ** 2 + sp.pi**2 / 6) / k**2, -(1 - sp.EulerGamma) / lam],
                           [-(1 - sp.EulerGamma) / lam, k**2 / lam**2]]), -12 / sp.pi**2, "Gupta & Kundu"),
    "logistic": (sp.diag(1 / (3 * s_**2), (sp.pi**2 + 3) / (9 * s_**2)), None, "standard"),
    "laplace": (sp.diag(1 / b**2, 1 / b**2), -2, "score route; Laplace manifold is hyperbolic"),
}


def _fisher_symbols(name):
    # catalog symbols are created per call; compare by name
    return {str(s): s for s in catalog.get(name).params + tuple(catalog.get(name).fixed.values())
            if isinstance(s, sp.Symbol)}


def _rename(expr, name):
    table = _fisher_symbols(name)
    return sp.sympify(expr).xreplace({s: table[str(s)] for s in sp.sympify(expr).free_symbols if str(s) in table})


def test_catalog_has_at_least_twenty_families():
    assert len(catalog.names()) >= 20


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_fisher_matches_closed_form(name, geometry):
    expected, _, _ = CLOSED_FORMS[name]
    g = geometry(name).fisher
    diff = (g - _rename(expected, name)).applyfunc(lambda e: sp.simplify(sp.expand_func(e)))
    assert diff == sp.zeros(*g.shape), f"{name}: {g} vs {expected}"


@pytest.mark.parametrize("name", [n for n, v in sorted(CLOSED_FORMS.items()) if v[1] is not None])
def test_scalar_curvature_matches_closed_form(name, geometry):
    expected = _rename(CLOSED_FORMS[name][1], name)
    assert sp.simplify(geometry(name).scalar_curvature - expected) == 0


def test_categorical_is_a_sphere_of_radius_two(geometry):
    # simplex with the Fisher metric = positive orthant of a sphere of radius 2: K = 1/4
    g = geometry("categorical:k=4")
    assert sp.simplify(g.scalar_curvature - sp.Rational(3 * 2, 4)) == 0  # n(n-1) K with n = 3
    p1, p2, p3 = g.params
    expected = sp.Matrix(3, 3, lambda i, j: (1 / g.params[i] if i == j else 0) + 1 / (1 - p1 - p2 - p3))
    assert (g.fisher - expected).applyfunc(sp.simplify) == sp.zeros(3, 3)


def test_dirichlet_metric_is_trigamma_form(geometry):
    g = geometry("dirichlet:k=3")
    al = g.params
    a0 = sum(al)
    expected = sp.Matrix(3, 3, lambda i, j: (tg(1, al[i]) if i == j else 0) - tg(1, a0))
    assert (g.fisher - expected).applyfunc(sp.simplify) == sp.zeros(3, 3)


@pytest.mark.parametrize("d", [2, 3])
def test_multivariate_normal_blocks(d, geometry):
    g = geometry(f"multivariate_normal:d={d}")
    entries = iter(g.params[d:])  # s_ij, i <= j, row by row
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    cov = sp.zeros(d, d)
    for i, j in pairs:
        cov[i, j] = cov[j, i] = next(entries)
    prec = cov.inv()
    assert (g.fisher[:d, :d] - prec).applyfunc(sp.cancel) == sp.zeros(d, d)
    # Σ-block: g(E_a, E_b) = ½ tr(P E_a P E_b) with symmetric unit matrices
    units = [sp.Matrix(d, d, lambda r, c, i=i, j=j: int({r, c} == {i, j})) for i, j in pairs]
    m = len(pairs)
    block = sp.Matrix(m, m, lambda a, b: (prec * units[a] * prec * units[b]).trace() / 2)
    assert (g.fisher[d:, d:] - block).applyfunc(sp.cancel) == sp.zeros(m, m)
    assert g.fisher[:d, d:] == sp.zeros(d, m)


@pytest.mark.parametrize("d", [2, 3, pytest.param(4, marks=pytest.mark.slow)])
def test_centered_normal_is_the_spd_symmetric_space(d, geometry):
    # Fisher metric ½ tr(Σ⁻¹dΣ Σ⁻¹dΣ): half the affine-invariant metric of SPD(d), whose scalar curvature
    # is −d(d−1)(d+2)/8 (SPD(2) = ℝ × H² with K = −1/2); halving the metric doubles it
    assert geometry(f"centered_normal:d={d}").scalar_curvature == sp.Rational(-d * (d - 1) * (d + 2), 4)


@pytest.mark.parametrize("name", catalog.names())
def test_every_family_derives_everything(name, geometry):
    g = geometry(name)
    n = g.family.n
    gam = g.christoffel()
    assert gam.shape == (n, n, n)
    for k_ in range(n):
        for i in range(n):
            for j in range(n):
                assert gam[k_, i, j] == gam[k_, j, i]
    assert not g.scalar_curvature.has(sp.Integral)
    eqs = g.geodesic_equations()
    assert list(eqs) == list(g.params)
    assert (g.fisher * g.inverse_fisher).applyfunc(lambda e: sp.simplify(sp.expand_func(e))) == sp.eye(n)


def test_a_family_remembers_its_catalog_origin_through_its_charts(tmp_path):
    from symgeo.spec import load_spec
    family = catalog.get("categorical:k=4")
    assert catalog.spec_of(family) == "categorical:k=4"
    assert catalog.spec_of(family.in_chart("natural")) == "categorical:k=4"
    assert catalog.get(catalog.spec_of(catalog.get("binomial:n=7"))).key == catalog.get("binomial:n=7").key
    spec = tmp_path / "normal.toml"  # declared elsewhere under a catalog name: not the catalog's family
    spec.write_text('name = "normal"\nvariable = "x"\nsupport = "reals"\n'
                    'log_density = "-(x - mu)**2/(2*sigma**2) - log(sigma) - log(2*pi)/2"\n'
                    '[params]\nmu = "real"\nsigma = "positive"\n')
    assert catalog.spec_of(load_spec(str(spec))) is None


def test_a_declaration_is_frozen():
    family = catalog.get("gamma")
    with pytest.raises(AttributeError, match="frozen"):
        family.log_density = sp.Integer(0)
    with pytest.raises(TypeError):
        type(family)("gamma", family.variables, family.support)  # keyword-only after the name
