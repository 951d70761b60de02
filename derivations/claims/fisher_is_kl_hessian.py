"""Seed: "the Fisher matrix is the second derivative of KL(p(θ) || p(θ+dθ)) with respect to dθ at zero"."""
import sympy as sp

from _claim import report
from symgeo import Geometry, catalog
from symgeo.divergence import kl

rows = []
for name in ("normal", "gamma", "beta"):
    geo = Geometry(catalog.get(name))
    steps = {p: sp.Symbol(f"d_{p}", real=True) for p in geo.params}
    divergence = kl(geo, {p: p for p in geo.params}, {p: p + steps[p] for p in geo.params})
    hessian = sp.hessian(divergence, list(steps.values())).xreplace({s: 0 for s in steps.values()})
    rows.append((name, sp.simplify(hessian - geo.fisher) == sp.zeros(*geo.fisher.shape)))
report("∂²/∂dθ² KL(p_θ ‖ p_{θ+dθ}) at dθ = 0 equals the Fisher metric",
       ", ".join(f"{name}: {'equal' if ok else 'DIFFERENT'} (symbolic)" for name, ok in rows),
       "holds" if all(ok for _, ok in rows) else "does not hold")
