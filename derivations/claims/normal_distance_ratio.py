"""Seed: "the Fisher–Rao distance between N(0,1) and N(1,1) differs from the distance between N(0,100) and
N(1,100) by a factor of 100".

The check is numeric.claims.normal_distance_ratio; `symgeo report --claims` collects every claim."""
from numeric.claims import normal_distance_ratio

print(normal_distance_ratio())
