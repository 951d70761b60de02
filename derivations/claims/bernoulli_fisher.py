"""Seed: "Fisher information F(p) for Bernoulli(p) is maximum at p = 0.5 or p = 0.1?".

The check is numeric.claims.bernoulli_fisher; `symgeo report --claims` collects every claim."""
from numeric.claims import bernoulli_fisher

print(bernoulli_fisher())
