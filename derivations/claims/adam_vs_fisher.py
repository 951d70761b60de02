"""Seed: "Adam uses a diagonal approximation of the second derivative of the loss. In what sense is this
related to the Fisher matrix? What does Adam miss?".

The check is numeric.claims.adam_vs_fisher; `symgeo report --claims` collects every claim."""
from numeric.claims import adam_vs_fisher

print(adam_vs_fisher())
