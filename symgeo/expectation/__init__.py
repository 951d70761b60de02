"""The expectation engine: E_ξ[f(x, ξ)] exactly where an identity or SymPy finds it, else as an exact
integral or series representation (see dispatch for the order of methods).

Modules, one mechanism each: reduction (x = x(z, ξ)), laws (carrying a law onto Gamma/Beta/Normal),
identities (differentiated transforms), transform (laws of a monotone transform of a standard
normal), bounded (SymPy integrate/summation under a time bound,
numeric identification of constants), quadrature (mpmath references), representation (Integral/Sum).
"""
from .dispatch import DEFAULT_TIMEOUT, Expectations, expectations, total_mass
from .quadrature import numeric_expectation
from .reduction import find_reduction, reduced_log_density
from .representation import is_represented, kind

__all__ = [
           "DEFAULT_TIMEOUT",
           "Expectations",
           "expectations",
           "find_reduction",
           "is_represented",
           "kind",
           "numeric_expectation",
           "reduced_log_density",
           "total_mass",
]
