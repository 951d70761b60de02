"""Seed: "the Fisher–Rao distance between N(0,1) and N(1,1) differs from the distance between N(0,100) and
N(1,100) by a factor of 100"."""
import numeric
from _claim import report
from numeric.geodesic import distance

normal = numeric.compile("normal")
d1 = distance(normal, [0.0, 1.0], [1.0, 1.0]).value
d_sigma = distance(normal, [0.0, 100.0], [1.0, 100.0]).value     # reading 1: σ = 100
d_variance = distance(normal, [0.0, 10.0], [1.0, 10.0]).value    # reading 2: σ² = 100
report("d(N(0,1), N(1,1)) / d(N(0,100), N(1,100)) = 100",
       f"d(σ=1) = {d1:.6f}; σ = 100: d = {d_sigma:.6f}, ratio {d1 / d_sigma:.3f}; "
       f"σ² = 100: d = {d_variance:.6f}, ratio {d1 / d_variance:.3f}",
       f"approximately (ratio {d1 / d_sigma:.1f}) if 100 is the standard deviation; wrong (ratio "
       f"{d1 / d_variance:.2f}) if it is the variance, as the N(μ, σ²) notation suggests")
