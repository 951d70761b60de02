"""Seed: "Natural gradient = F⁻¹∇L - invariant to reparametrization".

The check is numeric.claims.natural_gradient_invariance; `symgeo report --claims` collects every claim."""
from numeric.claims import natural_gradient_invariance

print(natural_gradient_invariance())
