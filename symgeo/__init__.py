"""symgeo: symbolic information geometry.

Declare a family (a density, or an exponential family θ, T(x), A(θ), h(x)) and derive its
Fisher metric, connections, curvature and geodesic equations exactly with SymPy.
"""
from . import catalog
from .errors import (
                     DomainError,
                     IntegrationError,
                     InvalidArgumentError,
                     NonRegularFamilyError,
                     SingularFisherError,
                     SpecError,
                     SymgeoError,
                     UnknownFamilyError,
                     UnnormalizedDensityError,
)
from .family import Chart, ExponentialFamily, Family, Reduction
from .geometry import Geometry
from .recognize import recognize
from .support import Box, FinitePoints, Integers, Interval, Simplex

__version__ = "0.1.0"

__all__ = [
    "Box", "Chart", "DomainError", "ExponentialFamily", "Family", "FinitePoints", "Geometry",
    "Integers", "IntegrationError", "Interval", "InvalidArgumentError", "NonRegularFamilyError", "Reduction",
    "SingularFisherError", "Simplex", "SpecError", "SymgeoError", "UnknownFamilyError",
    "UnnormalizedDensityError", "catalog", "recognize",
]
