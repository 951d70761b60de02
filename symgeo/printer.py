"""symgeo's LaTeX printer: SymPy's, with ψ, ψ⁽ⁿ⁾ and log Γ instead of operator names. Everything that
writes LaTeX uses it (symgeo.render's displays and documents, a Geometry in a notebook).

>>> latex(sp.polygamma(1, sp.Symbol("k")))
'\\\\psi^{(1)}\\\\left(k\\\\right)'
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter


class Printer(LatexPrinter):
    """SymPy's LaTeX with ψ, ψ^{(n)} and log Γ instead of operator names."""

    def _print_polygamma(self, expr, exp=None):
        n, x = expr.args
        head = r"\psi" if n == 0 else rf"\psi^{{({self._print(n)})}}"
        return head + rf"\left({self._print(x)}\right)" + (f"^{{{exp}}}" if exp else "")

    def _print_loggamma(self, expr, exp=None):
        return r"\log\Gamma" + (f"^{{{exp}}}" if exp else "") + rf"\left({self._print(expr.args[0])}\right)"


def latex(expr) -> str:
    return Printer().doprint(sp.sympify(expr))
