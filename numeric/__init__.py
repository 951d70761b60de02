"""Numeric backends generated from symgeo's symbolic results.

`numeric.compile("gamma", backend="numpy")` bundles a family's generated functions (Fisher metric,
Christoffel symbols, η(θ), KL, geodesic right-hand side ...); `numeric.geodesic` integrates geodesics and
computes Fisher–Rao distances, `numeric.batch_geodesic.distances` many pairs at once;
`numeric.verify` checks a family's symbolic results against independent
numerics.
"""
from .compiled import CompiledFamily, compile

__all__ = ["CompiledFamily", "compile"]
