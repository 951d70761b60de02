"""Seed: "EM is alternating projections in dual geometry ... the convergence guarantee follows".

The check is numeric.claims.em_monotone; `symgeo report --claims` collects every claim."""
from numeric.claims import em_monotone

print(em_monotone())
