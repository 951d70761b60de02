"""Seed: "the Fisher matrix is the second derivative of KL(p(θ) || p(θ+dθ)) with respect to dθ at zero".

The check is numeric.claims.fisher_is_kl_hessian; `symgeo report --claims` collects every claim."""
from numeric.claims import fisher_is_kl_hessian

print(fisher_is_kl_hessian())
