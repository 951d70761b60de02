"""Seed: "the variance of any unbiased estimator cannot be smaller than 1/F(θ) ... MLE as n → ∞ achieves it".

The check is numeric.claims.cramer_rao; `symgeo report --claims` collects every claim."""
from numeric.claims import cramer_rao

print(cramer_rao())
