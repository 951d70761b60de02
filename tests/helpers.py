"""Independent numeric references for tests: curvature from metric values, Monte Carlo Fisher."""
from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp


def numeric_scalar_curvature(metric: sp.Matrix, params, point: dict, dps: int = 30) -> float:
    """Scalar curvature at a point from numerical derivatives of the metric (mpmath.diff).

    Independent of symgeo's tensor code: R = g^{bd} Ric_bd with Ric from Γ and ∂Γ,
    where ∂_m g^{-1} = −g^{-1} (∂_m g) g^{-1}.
    """
    n = len(params)
    with mpmath.workdps(dps):
        fns = [[sp.lambdify(params, metric[i, j], "mpmath") for j in range(n)] for i in range(n)]
        x0 = [mpmath.mpf(sp.N(point[p], dps)) for p in params]

        def partial(i, j, orders):
            return mpmath.diff(lambda *x: fns[i][j](*x), x0, orders)

        unit = lambda *idx: tuple(sum(1 for k in idx if k == m) for m in range(n))  # noqa: E731
        g = mpmath.matrix([[partial(i, j, (0,) * n) for j in range(n)] for i in range(n)])
        dg = [[[partial(j, k, unit(i)) for k in range(n)] for j in range(n)] for i in range(n)]
        ddg = [[[[partial(k, l, unit(i, j)) for l in range(n)] for k in range(n)] for j in range(n)]
               for i in range(n)]
        gi = g ** -1
        first = [[[(dg[i][j][k] + dg[j][i][k] - dg[k][i][j]) / 2 for k in range(n)] for j in range(n)]
                 for i in range(n)]
        dfirst = [[[[(ddg[m][i][j][k] + ddg[m][j][i][k] - ddg[m][k][i][j]) / 2 for k in range(n)]
                    for j in range(n)] for i in range(n)] for m in range(n)]
        dgi = [-(gi * mpmath.matrix(dg[m]) * gi) for m in range(n)]
        gam = [[[sum(gi[k, l] * first[i][j][l] for l in range(n)) for j in range(n)] for i in range(n)]
               for k in range(n)]
        dgam = [[[[sum(dgi[m][k, l] * first[i][j][l] + gi[k, l] * dfirst[m][i][j][l] for l in range(n))
                   for j in range(n)] for i in range(n)] for k in range(n)] for m in range(n)]
        ric = mpmath.matrix(n, n)
        for s in range(n):
            for v in range(n):
                acc = 0
                for r in range(n):
                    acc += dgam[r][r][v][s] - dgam[v][r][r][s]
                    for lam in range(n):
                        acc += gam[r][r][lam] * gam[lam][v][s] - gam[r][v][lam] * gam[lam][r][s]
                ric[s, v] = acc
        return float(sum(gi[a, b] * ric[a, b] for a in range(n) for b in range(n)))


def monte_carlo_fisher(family, point: dict, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[s sᵀ] and its standard error from samples x ~ p(·|point), scores from the log-density."""
    (x,) = family.variables
    score = [sp.diff(family.log_density, p).xreplace(point) for p in family.params]
    fn = sp.lambdify(x, score, modules=["numpy", "scipy"])
    s = np.array([np.broadcast_to(np.asarray(v, dtype=float), samples.shape) for v in fn(samples)])
    outer = np.einsum("in,jn->ijn", s, s)
    return outer.mean(axis=-1), outer.std(axis=-1) / np.sqrt(samples.size)


def as_float_matrix(matrix: sp.Matrix, point: dict) -> np.ndarray:
    return np.array(sp.Matrix(matrix).xreplace(point).evalf(30).tolist(), dtype=float)


def gaussian_same_start(x: np.ndarray, k: int, rng, max_iter: int):
    """A shared start for symgeo's and scikit-learn's Gaussian EM: k data points as means, the data's
    covariance for every component, equal weights. Returns (parameters in the multivariate normal's
    chart, an unfitted scikit-learn GaussianMixture that starts there and runs max_iter iterations)."""
    from sklearn import mixture

    from numeric.exponential import GaussianMaps
    means = x[rng.choice(len(x), k, replace=False)]
    cov = np.cov(x.T)
    maps = GaussianMaps(x.shape[1])
    params = np.concatenate([means, np.repeat(cov[maps.iu][None], k, axis=0)], axis=1)
    reference = mixture.GaussianMixture(k, covariance_type="full", tol=0, max_iter=max_iter,
                                        weights_init=np.full(k, 1 / k), means_init=means,
                                        precisions_init=np.repeat(np.linalg.inv(cov)[None], k, axis=0))
    return params, reference
