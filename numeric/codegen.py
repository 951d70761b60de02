"""The one caller of `sympy.lambdify`: symbolic results become numpy functions (with CSE).

Special functions map to scipy.special (polygamma, loggamma, Bessel). Each generated function
keeps its source expressions in `.exprs` so tests can compare it against `evalf`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp

MODULES = ["numpy", "scipy"]


@dataclass(frozen=True)
class Generated:
    fn: Callable
    args: tuple
    exprs: object

    def __call__(self, *values):
        return self.fn(*values)


def numpy_function(args, exprs) -> Generated:
    """A numpy function of `args` returning `exprs` (a scalar, list or Matrix), built with CSE."""
    fn = sp.lambdify(list(args), exprs, modules=MODULES, cse=True)
    return Generated(fn, tuple(args), exprs)


def as_array(value) -> np.ndarray:
    return np.asarray(value, dtype=float)
