"""Symbolic results become numpy or torch functions (with CSE): the numeric backends' code generator.

Special functions map to scipy.special (numpy backend) or torch.special (torch backend): polygamma,
loggamma, gamma, erf, Bessel I₀/I₁. Generated functions broadcast over leading batch dimensions: with
arguments of broadcast shape B, a result of symbolic shape S comes back with shape B + S. Each keeps its
source expressions in `.exprs` so tests compare it against `evalf`.

>>> import sympy as sp
>>> s = sp.Symbol("sigma", positive=True)
>>> g = generate([s], sp.Matrix([[1 / s**2, 0], [0, 2 / s**2]]))
>>> g(np.array([1.0, 2.0])).shape
(2, 2, 2)
>>> float(g(2.0)[1, 1])
0.5
"""
from __future__ import annotations

import math
from collections.abc import Callable

import mpmath
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from symgeo.errors import InvalidArgumentError

from .blocks import BLOCK, run_blocks

BACKENDS = ("numpy", "torch")
NUMPY_MODULES = ["numpy", "scipy"]


def _fold_constants(expr: sp.Expr) -> sp.Expr:
    """ζ(3), γ, π, log 2, √2 ... → 20-digit floats (torch functions want tensors, not numbers)."""
    return expr.replace(
        lambda a: a.is_number and isinstance(a, (sp.NumberSymbol, sp.Function, sp.Pow)) and not a.is_Rational,
        lambda a: sp.Float(a.evalf(20), 20))


class LogGamma(sp.Function):
    """log Γ(z) that SymPy never rewrites: its own loggamma of an integer-valued argument becomes log Γ(z)
    again when an expression is rebuilt (as common-subexpression elimination does), and Γ(z) overflows at
    171! in float64 and 35! in float32 (a Poisson log-density at 200 counts was −inf)."""

    nargs = 1

    def _eval_evalf(self, prec):
        return sp.loggamma(self.args[0]).evalf(mpmath.libmp.prec_to_dps(prec))


def _log_gamma_forms(expr: sp.Expr) -> sp.Expr:
    """log binomial(n, k), log n!, log Γ(z), loggamma(z) → LogGamma sums: no overflow, and torch can
    print them."""
    lg = LogGamma

    def as_loggamma(arg):
        if isinstance(arg, sp.binomial):
            n, k = arg.args
            return lg(n + 1) - lg(k + 1) - lg(n - k + 1)
        if isinstance(arg, sp.factorial):
            return lg(arg.args[0] + 1)
        if isinstance(arg, sp.gamma):
            return lg(arg.args[0])
        return None
    expr = expr.replace(lambda a: isinstance(a, sp.log) and as_loggamma(a.args[0]) is not None,
                        lambda a: as_loggamma(a.args[0]))
    return expr.replace(sp.loggamma, LogGamma)


def _gamma_products(expr: sp.Expr) -> sp.Expr:
    """Γ(a)^i Γ(b)^j … and factorials in one product, with positive arguments → exp(i log Γ(a) + j log Γ(b)
    …): each factor overflows where their ratio does not (the Yule–Simon series' term Γ(x) Γ(ρ+1) / Γ(ρ+x+1)
    was inf/inf from x = 171 on). Arguments not known positive keep their Γ (log Γ loses Γ's sign)."""
    def exponent(factor):
        base, power = factor.as_base_exp()
        if not power.is_Integer:
            return None
        if isinstance(base, sp.gamma) and base.args[0].is_positive:
            return power * LogGamma(base.args[0])
        if isinstance(base, sp.factorial) and base.args[0].is_nonnegative:
            return power * LogGamma(base.args[0] + 1)
        return None

    def rewrite(product):
        logs = [exponent(f) for f in product.args]
        if sum(x is not None for x in logs) < 2:
            return product
        rest = [f for f, x in zip(product.args, logs) if x is None]
        return sp.Mul(*rest) * sp.exp(sp.Add(*[x for x in logs if x is not None]))
    if not expr.has(sp.gamma, sp.factorial):
        return expr
    return expr.replace(lambda a: a.is_Mul, rewrite)


class Erfc(sp.Function):
    """erfc(u) that SymPy never rewrites: its own erfc(−u) becomes 2 − erfc(u) when an expression is rebuilt,
    which is the cancellation the form is there to avoid."""

    nargs = 1

    def _eval_evalf(self, prec):
        return sp.erfc(self.args[0]).evalf(mpmath.libmp.prec_to_dps(prec))


class ScaledBesselI(sp.Function):
    """e^{−|z|} I_ν(z), the exponentially scaled modified Bessel function (scipy's ive, torch's i0e/i1e):
    finite where I_ν(z) overflows (z > 713 in float64, 88 in float32; a von Mises at κ = 800 had a −inf
    log-density and a NaN Fisher)."""

    nargs = 2

    def _eval_evalf(self, prec):
        order, z = self.args
        return (sp.besseli(order, z) * sp.exp(-sp.Abs(z))).evalf(mpmath.libmp.prec_to_dps(prec))


def _scaled_bessel_forms(expr: sp.Expr) -> sp.Expr:
    """I_ν(z) → s·Ie_ν(z) with s = e^{|z|} a positive placeholder; log(s·…) = |z| + log(…), and s cancels
    from ratios (I₁/I₀, the Fisher's I₁²/I₀²) and from sums of terms of one degree in it. What is left of s
    becomes e^{|z|} again (no worse than before)."""
    if not expr.has(sp.besseli):
        return expr
    scales: dict = {}

    def scaled(order, z):
        scale = scales.setdefault(z, sp.Dummy("scale", positive=True))
        return scale * ScaledBesselI(order, z)
    expr = expr.replace(sp.besseli, scaled)
    marks = set(scales.values())
    expr = expr.replace(lambda a: a.is_Add and a.has(*marks), sp.factor_terms)
    by_mark = {mark: z for z, mark in scales.items()}

    def split_log(arg):
        factors = sp.Mul.make_args(arg)
        inside = [f for f in factors if not (f.free_symbols & marks)]
        pulled = [f for f in factors if f.free_symbols & marks]
        if not all(f in marks or (f.is_Pow and f.base in marks and f.exp.is_number) for f in pulled):
            return sp.log(arg)
        exponents = sum(sp.Abs(by_mark[f]) if f in marks else f.exp * sp.Abs(by_mark[f.base]) for f in pulled)
        return exponents + sp.log(sp.Mul(*inside))
    expr = expr.replace(lambda a: isinstance(a, sp.log) and a.args[0].has(*marks),
                        lambda a: split_log(a.args[0]))
    return expr.xreplace({mark: sp.exp(sp.Abs(z)) for z, mark in scales.items()})


def _shape_and_entries(exprs) -> tuple[tuple, list]:
    if isinstance(exprs, (sp.MatrixBase, sp.NDimArray)):
        shape = tuple(exprs.shape)
        return shape, [sp.sympify(e) for e in sp.flatten(exprs.tolist())]
    if isinstance(exprs, (list, tuple)):
        array = sp.Array(exprs)
        return tuple(array.shape), list(sp.flatten(array.tolist()))
    return (), [sp.sympify(exprs)]


class Generated:
    """A generated function of positional `args` (numbers or arrays/tensors of one broadcast shape)."""

    def __init__(self, args, exprs, backend: str = "numpy"):
        if backend not in BACKENDS:
            raise InvalidArgumentError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.args = tuple(args)
        self.exprs = exprs
        self.backend = backend
        self.shape, entries = _shape_and_entries(exprs)
        entries, self._represented = self._represented_atoms(entries)
        entries = [_prepare(e) for e in entries]
        # a guarded removable singularity (symgeo.removable) computes its unused branch too: quiet
        self._quiet = any(e.has(sp.Piecewise) for e in entries)
        self.entries = len(entries)
        self.fn: Callable = _lambdify(self.args + tuple(s for s, _ in self._represented), entries, backend)
        self.last_errors: tuple = ()

    def _represented_atoms(self, entries):
        """Integral/Sum atoms (symgeo's representations of expectations with no closed form) become
        extra arguments, each evaluated by numeric.represented before the entries."""
        from .represented import Represented, atoms
        found = atoms(entries)
        if not found:
            return entries, ()
        slots = [sp.Dummy(f"rep{k}") for k in range(len(found))]
        backend = self.backend

        def compile_fn(args, exprs):
            return _lambdify(args, [_prepare(e) for e in exprs], backend)
        reps = tuple((s, Represented(a, self.args, backend, compile_fn)) for s, a in zip(slots, found))
        table = dict(zip(found, slots))
        return [e.xreplace(table) for e in entries], reps

    def _with_represented(self, values) -> list:
        if not self._represented:
            return list(values)
        results = [rep(*values) for _, rep in self._represented]
        self.last_errors = tuple(err for _, err in results)
        return list(values) + [value for value, _ in results]

    def with_error(self, *values):
        """(result, error estimate per entry) (numpy): each integral/series atom's estimate carried
        through the entry by re-evaluating it with that atom moved by its estimate."""
        if not self._represented:
            result = self(*values)
            return result, np.zeros_like(result)
        atom_values = self._with_represented(_broadcast(values))  # once, for the result and the errors
        result = self._call_numpy(atom_values)
        error = np.zeros_like(result)
        base = len(values)
        for k, err in enumerate(self.last_errors):
            moved = list(atom_values)
            moved[base + k] = moved[base + k] + err
            error += np.abs(self._call_numpy(moved) - result)
        return result, error

    def __repr__(self) -> str:
        return f"Generated({', '.join(map(str, self.args))} -> shape {self.shape}, {self.backend})"

    def __call__(self, *values):
        if len(values) != len(self.args):
            raise TypeError(f"expected {len(self.args)} arguments ({', '.join(map(str, self.args))}), "
                            f"got {len(values)}")
        if self.backend == "torch":
            return self._call_torch(values)
        if self._represented:
            return self._call_numpy(self._with_represented(_broadcast(values)))
        return self._call_numpy([np.asarray(v, dtype=float) for v in values])

    def _call_numpy(self, values):
        if self._quiet:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return self._fill_numpy(values)
        return self._fill_numpy(values)

    def _fill_numpy(self, values):
        batch = np.broadcast_shapes(*(v.shape for v in values)) if values else ()
        size = math.prod(batch)
        out = np.empty((self.entries, size))  # entry-major: each entry is one contiguous write
        if size > BLOCK and all(v.size in (1, size) for v in values):
            flat = [v.reshape(-1) if v.size == size else v.reshape(()) for v in values]

            def fill(start, stop):
                for k, entry in enumerate(self.fn(*(v if v.ndim == 0 else v[start:stop] for v in flat))):
                    out[k, start:stop] = entry
            run_blocks(fill, size)
        else:
            for k, entry in enumerate(self.fn(*values)):
                out[k] = np.broadcast_to(entry, batch).reshape(-1)
        return np.moveaxis(out, 0, -1).reshape(batch + self.shape)  # a view, batch axes first

    @property
    def scalar(self) -> Callable:
        """For solvers calling with one point at a time (numpy): the generated function itself, without
        `__call__`'s broadcasting, its integral/series atoms evaluated first when it has them."""
        if not self._represented:
            return self.fn
        return lambda *values: self.fn(*self._with_represented(list(values)))

    def rows(self, z: np.ndarray) -> np.ndarray:
        """Fast path for solvers (numpy): the arguments are the columns of z (K, len(args)); returns
        (K, entries), with none of `__call__`'s broadcasting or blocking."""
        out = np.empty((len(z), self.entries))
        for k, entry in enumerate(self.fn(*self._with_represented(list(z.T)))):
            out[:, k] = entry
        return out

    def _call_torch(self, values):
        import torch
        like = next((v for v in values if isinstance(v, torch.Tensor)), None)
        dtype = like.dtype if like is not None and like.is_floating_point() else torch.float64
        device = like.device if like is not None else None
        values = [torch.as_tensor(v, dtype=dtype, device=device) for v in values]
        shapes = {v.shape for v in values}
        # torch.broadcast_shapes is Python-level and slow: skip it when there is nothing to broadcast
        batch = shapes.pop() if len(shapes) == 1 else torch.broadcast_shapes(*shapes) if shapes else ()
        batch = torch.Size(batch)
        if self._represented:
            values = [v.expand(batch) for v in values]
        entries = self.fn(*self._with_represented(values))
        full = [e if isinstance(e, torch.Tensor) and e.shape == batch and e.dtype == dtype
                else torch.as_tensor(e, dtype=dtype, device=device).expand(batch) for e in entries]
        return torch.stack(full, dim=-1).reshape(tuple(batch) + self.shape)

    def on(self, points):
        """Evaluate at points given as one array whose last axis runs over the arguments."""
        return self(*[points[..., i] for i in range(len(self.args))])


def _broadcast(values) -> list:
    arrays = [np.asarray(v, dtype=float) for v in values]
    batch = np.broadcast_shapes(*(v.shape for v in arrays))
    return [np.broadcast_to(v, batch) for v in arrays]


def _prepare(expr):
    return _fold_constants(_scaled_bessel_forms(_gamma_products(_small_arguments(_log_gamma_forms(expr)))))


def _small_arguments(expr: sp.Expr) -> sp.Expr:
    """u·eʷ − u → u·expm1(w) and 1 ± erf(u) → erfc(∓u) for two-term sums, log(1 + x) → log1p(x): exact
    where w or x is tiny and where 1 + erf(u) cancels (the generalized exponential's (eᶻ − 1)^α,
    log(1 − e⁻ᶻ) and eᶻe^{αz} − e^{αz} near z = 0 were 0, −inf and 0 in floating point, the skew normal's
    1 + erf(αz/√2) 0 for αz < −8.3: their integrands NaN). One pass over two-term sums: SymPy's own
    rewriting rules (sympy.codegen.rewriting) do more, at a cost of minutes on a geodesic Jacobian."""
    if not expr.has(sp.exp, sp.log, sp.erf):
        return expr

    def two_terms(a):
        return a.is_Add and len(a.args) == 2 and a.has(sp.exp, sp.erf)

    def rewrite(a):  # x + y with x = −y·eʷ: −y·expm1(w) (eᶻ − 1, 1 − e⁻ᶻ, eᶻe^{αz} − e^{αz}); 1 ± erf
        for x, y in (a.args, a.args[::-1]):
            ratio = x / (-y)
            if isinstance(ratio, sp.exp):
                return -y * expm1(ratio.args[0])
            if x == 1 and isinstance(y, sp.erf):  # 1 + erf(u) = erfc(−u), not 0 for u < −5.9
                return Erfc(-y.args[0])
            if x == 1 and isinstance(-y, sp.erf):
                return Erfc((-y).args[0])
        return a
    expr = expr.replace(two_terms, rewrite)
    return expr.replace(lambda a: isinstance(a, sp.log) and a.args[0].is_Add and len(a.args[0].args) == 2
                        and sp.S.One in a.args[0].args, lambda a: log1p(a.args[0] - 1))


def generate(args, exprs, backend: str = "numpy") -> Generated:
    """A `backend` function of `args` returning `exprs` (scalar, list, Matrix or Array), built with CSE."""
    return Generated(args, exprs, backend)


def numpy_function(args, exprs) -> Generated:
    return Generated(args, exprs, "numpy")


def _lambdify(args, entries, backend):
    if backend == "numpy":
        import numeric.special
        return sp.lambdify(list(args), entries, modules=[{"numeric": numeric}] + NUMPY_MODULES,
                           printer=_numpy_printer(), cse=True)
    return sp.lambdify(list(args), entries, modules="torch", printer=_torch_printer(), cse=True)


_PRINTER_SETTINGS = {"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": True,
                     "user_functions": {}}


def _small_power(printer, expr) -> str | None:
    """x**-n as 1/x**n and x**3, x**4 as products: numpy's pow is ~4× slower than a multiply."""
    base, exp = expr.as_base_exp()
    if not exp.is_Integer or exp == 0:
        return None
    if exp < 0:
        return f"(1/({printer._print(base ** -exp)}))"
    if exp in (3, 4):
        factor = printer.parenthesize(base, 1000)
        return "(" + "*".join([factor] * int(exp)) + ")"
    return None


def _numpy_printer():
    from sympy.printing.numpy import SciPyPrinter

    class FastPowPrinter(SciPyPrinter):
        def _print_Pow(self, expr, rational=False):
            return _small_power(self, expr) or super()._print_Pow(expr, rational=rational)

        def _print_LogGamma(self, expr):
            return f"scipy.special.gammaln({self._print(expr.args[0])})"

        def _print_ScaledBesselI(self, expr):
            return f"scipy.special.ive({self._print(expr.args[0])}, {self._print(expr.args[1])})"

        def _print_Erfc(self, expr):
            return f"scipy.special.erfc({self._print(expr.args[0])})"

        def _print_polygamma(self, expr):
            """ψ⁽ⁿ⁾(x) = (−1)ⁿ⁺¹ n! ζ(n+1, x) directly: scipy's polygamma also evaluates ψ(x) and a
            `where`, which makes it ~5× slower on scalars and ~2× on arrays."""
            order, arg = int(expr.args[0]), self._print(expr.args[1])
            if order == 0:
                return f"scipy.special.digamma({arg})"
            if order == 1:
                return f"numeric.special.trigamma({arg})"
            sign = (-1) ** (order + 1) * math.factorial(order)
            return f"({sign}*scipy.special.zeta({order + 1}, {arg}))"

    return FastPowPrinter(_PRINTER_SETTINGS)


def _torch_printer():
    from sympy.printing.pytorch import TorchPrinter

    class SpecialTorchPrinter(TorchPrinter):
        """sympy's torch printer plus the special functions Fisher geometry needs."""

        def _print_polygamma(self, expr):
            """ψ⁽ⁿ⁾(x) = (−1)ⁿ⁺¹ n! ζ(n+1, x): torch's own trigamma is good to only ~5e-10."""
            order, arg = int(expr.args[0]), self._print(expr.args[1])
            if order == 0:
                return f"torch.special.digamma({arg})"
            sign = (-1) ** (order + 1) * math.factorial(order)
            return f"({sign}*torch.special.zeta({order + 1}.0, {arg}))"

        def _bessel(self, expr, torch_name, recurrence, suffix=""):
            """Orders 0 and 1 from torch.special; higher integer orders by the recurrence (upward:
            fine for the small orders of density declarations, tested against SymPy)."""
            order, arg = expr.args
            if order in (0, 1):
                return f"torch.special.{torch_name}{int(order)}{suffix}({self._print(arg)})"
            if not (order.is_Integer and order > 1):
                raise NotImplementedError(
                    f"torch has {type(expr).__name__} of integer order only, not {order}"
                )
            return f"({self._print(recurrence(order - 1, arg))})"  # a sum: parenthesised in a product

        def _print_besseli(self, expr):  # I_{n+1} = I_{n−1} − (2n/x) I_n
            return self._bessel(expr, "i", lambda n, x: sp.besseli(n - 1, x) - 2 * n / x * sp.besseli(n, x))

        def _print_ScaledBesselI(self, expr):  # the same recurrence: every order carries e^{−|x|}
            def recurrence(n, x):
                return ScaledBesselI(n - 1, x) - 2 * n / x * ScaledBesselI(n, x)
            return self._bessel(expr, "i", recurrence, suffix="e")

        def _print_besselj(self, expr):  # J_{n+1} = (2n/x) J_n − J_{n−1}
            return self._bessel(
                expr, "bessel_j", lambda n, x: 2 * n / x * sp.besselj(n, x) - sp.besselj(n - 1, x)
            )

        def _print_erfc(self, expr):
            return f"torch.special.erfc({self._print(expr.args[0])})"

        _print_Erfc = _print_erfc  # the form SymPy cannot rewrite (codegen.Erfc) prints as erfc

        def _print_expm1(self, expr):
            return f"torch.expm1({self._print(expr.args[0])})"

        def _print_log1p(self, expr):
            return f"torch.log1p({self._print(expr.args[0])})"

        def _print_beta(self, expr):  # positive arguments, as in density declarations
            a, b = expr.args
            return self._print(sp.exp(LogGamma(a) + LogGamma(b) - LogGamma(a + b)))

        def _print_binomial(self, expr):
            n, k = expr.args
            return self._print(sp.exp(LogGamma(n + 1) - LogGamma(k + 1) - LogGamma(n - k + 1)))

        def _print_factorial(self, expr):
            return self._print(sp.exp(LogGamma(expr.args[0] + 1)))

        def _print_gamma(self, expr):
            return f"torch.exp(torch.lgamma({self._print(expr.args[0])}))"

        def _print_LogGamma(self, expr):
            return f"torch.lgamma({self._print(expr.args[0])})"

    return SpecialTorchPrinter(_PRINTER_SETTINGS)


def as_array(value) -> np.ndarray:
    return np.asarray(value, dtype=float)
