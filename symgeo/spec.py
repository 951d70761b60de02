"""Families declared in TOML spec files, parsed safely.

Expressions are parsed by Python's `ast` and rebuilt node by node from a whitelist (numbers,
declared symbols, + − × ÷ **, whitelisted functions). Nothing in the file is ever passed to
`eval`, `sympify` or `parse_expr`. File size, expression length, depth and node count are
bounded; numeric powers are bounded so `9**9**9**9` is refused, not evaluated.

    name = "zero_inflated_poisson"
    variable = "x"
    support = "naturals"   # reals | positive | unit | naturals | {interval=[lo, hi]} | {integers=[lo, hi]}
    density = "..."               # or log_density = "..."
    [params]
    lam = "positive"              # real | positive | negative | unit | {interval=[lo, hi]}
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import sympy as sp

from .errors import SpecError
from .family import Chart, ExponentialFamily, Family, Reduction
from .files import UnsafeFileError, read_bounded
from .functions import FUNCTIONS
from .support import Integers, Interval, Region

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

MAX_FILE_BYTES = 64 * 1024
MAX_EXPR_CHARS = 4000
MAX_DEPTH = 40
MAX_NODES = 800
MAX_EXPONENT = 100
MAX_DIGITS = 60
MAX_RESULT_DIGITS = 2000
MAX_PARAMS = 12
MAX_CONSTANT_ARGUMENT = 1000

CONSTANTS = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "EulerGamma": sp.EulerGamma}
_BINOPS = {ast.Add: sp.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sp.Mul,
           ast.Div: lambda a, b: a / b, ast.Pow: None}


def parse_expression(text: str, names: dict, where: str = "expression") -> sp.Expr:
    """Rebuild a SymPy expression from text using only whitelisted syntax.

    >>> x = sp.Symbol('x'); parse_expression("exp(-x**2/2)", {"x": x})
    exp(-x**2/2)
    >>> parse_expression("9**9**9**9", {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    symgeo.errors.SpecError: expression: the power 9**387420489 is too large to evaluate (limit 100 digits ...
    """
    if not isinstance(text, str):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = repr(text)
        else:
            raise SpecError(f"{where}: expected an expression string, got {type(text).__name__}")
    if len(text) > MAX_EXPR_CHARS:
        raise SpecError(f"{where}: expression longer than {MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise SpecError(f"{where}: not a valid expression ({exc.msg if hasattr(exc, 'msg') else exc})") \
            from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise SpecError(f"{where}: expression has {count} syntax nodes (limit {MAX_NODES})")
    return _build(tree.body, names, where, 0)


def _build(node, names: dict, where: str, depth: int):
    if depth > MAX_DEPTH:
        raise SpecError(f"{where}: expression nested deeper than {MAX_DEPTH}")
    d = depth + 1
    if isinstance(node, ast.Constant):
        return _number(node.value, where)
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise SpecError(f"{where}: unknown name {node.id!r} (declare it under [params], [fixed] or as "
                        f"the variable)")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        val = _build(node.operand, names, where, d)
        return -val if isinstance(node.op, ast.USub) else val
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _build(node.left, names, where, d), _build(node.right, names, where, d)
        if isinstance(node.op, ast.Pow):
            return _power(left, right, where)
        if isinstance(node.op, ast.Div) and right == 0:
            raise SpecError(f"{where}: division by zero")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
            raise SpecError(f"{where}: function {name!r} is not allowed (allowed: "
                            f"{', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise SpecError(f"{where}: keyword arguments are not allowed")
        args = [_build(a, names, where, d) for a in node.args]
        _check_constant_arguments(node.func.id, args, where)
        try:
            return FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: {node.func.id}{tuple(args)}: {exc}") from None
    raise SpecError(f"{where}: syntax {type(node).__name__} is not allowed in expressions")


def _check_constant_arguments(name: str, args: list, where: str) -> None:
    """SymPy evaluates a function of numbers exactly when it is built (gamma(10**10) is a
    ten-billion-digit integer, polygamma(10**9, 1) needs 10**9!): refuse large constant arguments."""
    for arg in args:
        if arg.free_symbols or not arg.is_number:
            continue
        size = abs(sp.N(arg, 15))
        if not size.is_finite or size > MAX_CONSTANT_ARGUMENT:
            raise SpecError(
                f"{where}: {name}({', '.join(map(str, args))}) has a constant argument above "
                f"{MAX_CONSTANT_ARGUMENT} in magnitude (SymPy may evaluate such a constant exactly, "
                f"digit by digit); "
                f"declare it under [fixed] as 'positive' (kept symbolic) or use a smaller value"
            )


def _number(value, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: only real numbers are allowed, got {value!r}")
    if isinstance(value, int):
        if len(str(abs(value))) > MAX_DIGITS:
            raise SpecError(f"{where}: integer literal longer than {MAX_DIGITS} digits")
        return sp.Integer(value)
    if not math.isfinite(value):
        raise SpecError(f"{where}: non-finite number {value!r}")
    return sp.Rational(repr(value))


def _power(base, exponent, where: str):
    if exponent.is_Number:
        if abs(exponent) > MAX_EXPONENT and base.is_Number and base not in (0, 1, -1):
            raise SpecError(f"{where}: the power {base}**{exponent} is too large to evaluate "
                            f"(limit {MAX_EXPONENT} digits of exponent magnitude)")
        if abs(exponent) > MAX_EXPONENT:
            raise SpecError(f"{where}: exponent {exponent} exceeds the limit {MAX_EXPONENT}")
        if base.is_Rational and base not in (0, 1, -1) and \
                float(abs(exponent)) * _log10_size(base) > MAX_RESULT_DIGITS:
            raise SpecError(f"{where}: the power {base}**{exponent} would have more than "
                            f"{MAX_RESULT_DIGITS} digits")
    elif base.is_Number and base not in (0, 1, -1) and exponent.is_number:
        raise SpecError(f"{where}: numeric power with a non-literal exponent is refused")
    return sp.Pow(base, exponent)


def _log10_size(r: sp.Rational) -> float:
    return max(math.log10(abs(int(r.p))), math.log10(abs(int(r.q))), 1e-3)


# -- files ----------------------------------------------------------------------------------------
def load_spec(path: str | Path) -> Family:
    path = Path(path)
    try:
        raw = read_bounded(path, MAX_FILE_BYTES)
    except UnsafeFileError as exc:
        raise SpecError(f"{exc}: a spec must be a regular TOML file of at most {MAX_FILE_BYTES} bytes") \
            from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise SpecError(f"{path}: TOML nested too deeply") from None
    return family_from_dict(data, str(path))


_PARAM_KINDS = {
    "real": (dict(real=True), sp.Interval(-sp.oo, sp.oo)),
    "positive": (dict(positive=True), sp.Interval.open(0, sp.oo)),
    "negative": (dict(negative=True), sp.Interval.open(-sp.oo, 0)),
    "unit": (dict(positive=True), sp.Interval.open(0, 1)),
}
MAX_VARIABLES = 4
_KEYS = {
    "name",
    "description",
    "variable",
    "variables",
    "support",
    "params",
    "fixed",
    "density",
    "log_density",
    "normalize",
    "exponential_family",
    "charts",
    "reduction",
    "closed_forms",
}
CLOSED_FORM_KINDS = ("kl",)


def _symbol_decl(name: str, kind, where: str, names: dict):
    _check_name(name, where)
    if isinstance(kind, str) and kind in _PARAM_KINDS:
        assumptions, domain = _PARAM_KINDS[kind]
        return sp.Symbol(name, **assumptions), domain
    if isinstance(kind, dict) and set(kind) == {"interval"}:
        lo, hi = _pair(kind["interval"], f"{where}.{name}.interval", names)
        return sp.Symbol(name, real=True), sp.Interval.open(lo, hi)
    raise SpecError(f"{where}.{name}: kind must be one of {', '.join(_PARAM_KINDS)} or {{interval=[lo, hi]}}")


def _check_name(name: str, where: str) -> None:
    if not (isinstance(name, str) and name.isidentifier() and len(name) <= 32) or name in CONSTANTS \
            or name.startswith("_"):
        raise SpecError(f"{where}: {name!r} is not a usable symbol name")


def _pair(value, where: str, names: dict):
    if not (isinstance(value, list) and len(value) == 2):
        raise SpecError(f"{where}: expected [lo, hi]")
    return tuple(parse_expression(v, names, where) for v in value)


def _support(value, where: str, names: dict, variable_assumptions: dict):
    simple = {"reals": (Interval(), dict(real=True)), "positive": (Interval(0, sp.oo), dict(positive=True)),
              "unit": (Interval(0, 1), dict(positive=True)),
              "naturals": (Integers(0, sp.oo), dict(integer=True, nonnegative=True))}
    if isinstance(value, str) and value in simple:
        support, assumptions = simple[value]
        variable_assumptions.update(assumptions)
        return support
    if isinstance(value, dict) and len(value) == 1:
        (kind, bounds), = value.items()
        lo, hi = _pair(bounds, f"{where}.{kind}", names)
        if kind == "interval":
            variable_assumptions.update(real=True)
            return Interval(lo, hi)
        if kind == "integers":
            variable_assumptions.update(integer=True)
            return Integers(lo, hi)
    raise SpecError(f"{where}: support must be reals, positive, unit, naturals, {{interval=[lo, hi]}} "
                    f"or {{integers=[lo, hi]}}")


def _region(var_names, decl, where: str, names: dict):
    """variables = ["x", "y"] with a [support] table {x = range, y = range}; a range's ends may name
    the other variables (0 < x < y: x = {interval = ["0", "y"]}, y = "positive")."""
    here = f"{where}: variables"
    if not (isinstance(var_names, list) and 2 <= len(var_names) <= MAX_VARIABLES
            and len(set(var_names)) == len(var_names)):
        raise SpecError(f"{here}: a list of 2 to {MAX_VARIABLES} distinct names")
    for v in var_names:
        _check_name(v, here)
        if v in names:
            raise SpecError(f"{here}: {v!r} is also declared as a parameter")
    if not (isinstance(decl, dict) and set(decl) == set(var_names)):
        raise SpecError(f"{where}: support must be a table with one range per variable "
                        f"({', '.join(var_names)})")
    symbols = {v: sp.Symbol(v, real=True) for v in var_names}
    for _ in range(2):  # assumptions from the ends: a variable above a positive one is positive
        local, found = {**names, **symbols}, {}
        for v in var_names:
            kind: dict = {}
            found[v] = sp.Symbol(v, **_variable_assumptions(
                _support(decl[v], f"{where}: support.{v}", local, kind), kind))
        symbols = found
    local = {**names, **symbols}
    ranges = {v: _support(decl[v], f"{where}: support.{v}", local, {}) for v in var_names}
    order = _innermost_first(ranges, symbols, where)
    names.update(symbols)
    return tuple(symbols[v] for v in var_names), Region(tuple((symbols[v], ranges[v]) for v in order))


def _variable_assumptions(support, kind: dict) -> dict:
    if isinstance(support, Integers):
        return {"integer": True, "nonnegative": True} if support.lo.is_nonnegative else {"integer": True}
    if kind.get("positive") or support.lo.is_nonnegative:
        return {"positive": True}
    return {"real": True}


def _innermost_first(ranges: dict, symbols: dict, where: str) -> list:
    """A variable whose range names another is integrated inside it, so it comes first."""
    depends = {v: {w for w, sym in symbols.items() if sym in ranges[v].free_symbols} for v in ranges}
    for v in ranges:
        if v in depends[v]:
            raise SpecError(f"{where}: the range of {v} refers to itself")
    order: list = []
    while len(order) < len(ranges):
        ready = [v for v in ranges if v not in order
                 and all(w in order for w in ranges if w != v and v in depends[w])]
        if not ready:
            raise SpecError(f"{where}: the ranges of the variables refer to each other in a circle")
        order.append(ready[0])
    return order


def family_from_dict(data: dict, where: str = "spec") -> Family:
    unknown = set(data) - _KEYS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: 'name' (a string) is required")
    params_decl = data.get("params")
    if not isinstance(params_decl, dict) or not params_decl:
        raise SpecError(f"{where}: [params] with at least one parameter is required")
    if len(params_decl) > MAX_PARAMS:
        raise SpecError(f"{where}: at most {MAX_PARAMS} parameters")
    names: dict = {}
    params, domains = [], {}
    for pname, kind in params_decl.items():
        sym, domain = _symbol_decl(pname, kind, f"{where}: params", names)
        params.append(sym)
        domains[sym] = domain
        names[pname] = sym
    fixed = _fixed(data.get("fixed", {}), where, names)
    if "variables" in data:
        if "variable" in data:
            raise SpecError(f"{where}: give variable or variables, not both")
        x, support = _region(data["variables"], data.get("support"), where, names)
    else:
        var_name = data.get("variable", "x")
        _check_name(var_name, f"{where}: variable")
        if var_name in names:
            raise SpecError(f"{where}: the variable {var_name!r} is also declared as a parameter")
        assumptions: dict = {}
        support = _support(data.get("support"), f"{where}: support", names, assumptions)
        x = sp.Symbol(var_name, **assumptions)
        names[var_name] = x
    common = dict(domains=domains, fixed=fixed, description=str(data.get("description", "")))
    common["charts"] = _charts(data.get("charts", {}), where, names, params)
    common["reduction"] = _reduction(data.get("reduction"), where, names)
    common["closed_forms"] = _closed_forms(data.get("closed_forms", {}), where, names, params, x)
    if "exponential_family" in data:
        return _exponential(data["exponential_family"], name, x, support, params, names, where, common)
    has_density, has_log = "density" in data, "log_density" in data
    if has_density == has_log:
        raise SpecError(f"{where}: give exactly one of density or log_density (or [exponential_family])")
    if has_density:
        dens = parse_expression(data["density"], names, f"{where}: density")
        family = Family(name, variables=x, support=support, params=params, density=dens, **common)
    else:
        family = Family(name, variables=x, support=support, params=params,
                        log_density=parse_expression(data["log_density"], names, f"{where}: log_density"),
                        **common)
    if data.get("normalize", False) is True:
        from .regularity import normalized
        family = normalized(family)
    return family


def _closed_forms(decl, where: str, names: dict, params: list, variables) -> dict:
    """[closed_forms] kl = "..." written in <param>_1 and <param>_2 (the two members)."""
    from .family import pair_of
    if not isinstance(decl, dict):
        raise SpecError(f"{where}: [closed_forms] must be a table")
    unknown = set(decl) - set(CLOSED_FORM_KINDS)
    if unknown:
        raise SpecError(f"{where}: closed_forms: unknown kind(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(CLOSED_FORM_KINDS)})")
    pair_names = {s.name: s for p in params for s in pair_of(p)}
    clash = sorted(set(pair_names) & set(names))
    if clash and decl:
        raise SpecError(f"{where}: closed_forms: {', '.join(clash)} already name something else")
    scope = {**{k: v for k, v in names.items() if k not in map(str, params)}, **pair_names}
    forms = {}
    for kind, text in decl.items():
        form = parse_expression(text, scope, f"{where}: closed_forms.{kind}")
        if form.free_symbols & set(sp.sympify(variables if isinstance(variables, tuple) else (variables,))):
            raise SpecError(f"{where}: closed_forms.{kind} is a function of the two members' parameters, "
                            f"not of the variable")
        forms[kind] = form
    return forms


def _fixed(decl, where: str, names: dict) -> dict:
    if not isinstance(decl, dict):
        raise SpecError(f"{where}: [fixed] must be a table")
    out = {}
    for fname, value in decl.items():
        _check_name(fname, f"{where}: fixed")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            sym = _number(value, f"{where}: fixed.{fname}")
        elif value in ("positive", "positive integer", "real"):
            sym = sp.Symbol(fname, positive=value != "real", integer=value == "positive integer",
                            real=True)
        else:
            raise SpecError(
                f"{where}: fixed.{fname} must be a number, 'positive', 'positive integer' or 'real'"
            )
        names[fname] = sym
        out[fname] = sym
    return out


def _charts(decl, where: str, names: dict, params: list) -> list:
    if not isinstance(decl, dict):
        raise SpecError(f"{where}: [charts] must be a table of tables")
    charts = []
    for cname, body in decl.items():
        here = f"{where}: charts.{cname}"
        if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
            raise SpecError(f"{here}: needs params = {{name = kind}} and one expression per old parameter")
        local = dict(names)
        new_params, domains = [], []
        for pname, kind in body["params"].items():
            sym, domain = _symbol_decl(pname, kind, f"{here}.params", local)
            local[pname] = sym
            new_params.append(sym)
            domains.append(domain)
        mapping = []
        for p in params:
            if str(p) not in body:
                raise SpecError(f"{here}: give {p} in terms of the new parameters")
            mapping.append((p, parse_expression(body[str(p)], local, f"{here}.{p}")))
        charts.append(Chart(cname, tuple(new_params), tuple(mapping), tuple(domains)))
    return charts


def _reduction(decl, where: str, names: dict):
    if decl is None:
        return None
    if not isinstance(decl, dict) or "x" not in decl:
        raise SpecError(f"{where}: [reduction] needs x = expression in z (and optionally support)")
    z = sp.Symbol("z", real=True)
    assumptions: dict = {}
    support = _support(decl.get("support", "reals"), f"{where}: reduction.support", names, assumptions)
    if assumptions.get("positive"):
        z = sp.Symbol("z", positive=True)
    return Reduction(z, parse_expression(decl["x"], {**names, "z": z}, f"{where}: reduction.x"), support)


def _exponential(decl, name, x, support, params, names, where, common):
    here = f"{where}: exponential_family"
    if not isinstance(decl, dict):
        raise SpecError(f"{here}: must be a table")
    stats = [parse_expression(t, names, f"{here}.stats") for t in _list(decl, "stats", here)]
    natural = tuple(sp.Symbol(f"theta{i + 1}", real=True) for i in range(len(stats)))
    nat_names = {**names, **{str(t): t for t in natural}}
    theta = [parse_expression(t, names, f"{here}.natural_of_params")
             for t in _list(decl, "natural_of_params", here)]
    log_a = decl.get("log_partition")
    log_a_params = decl.get("log_partition_of_params")
    if (log_a is None) == (log_a_params is None):
        raise SpecError(f"{here}: give log_partition (in theta1..) or log_partition_of_params")
    return ExponentialFamily(
        name,
        variables=x,
        support=support,
        natural=natural,
        stats=stats,
        log_partition=None if log_a is None else parse_expression(log_a, nat_names, f"{here}.log_partition"),
        log_base_measure=parse_expression(
            decl.get("log_base_measure", "0"), names, f"{here}.log_base_measure"
        ),
        params=params,
        natural_of_params=theta,
        log_partition_of_params=(
            None
            if log_a_params is None
            else parse_expression(log_a_params, names, f"{here}.log_partition_of_params")
        ),
        **common,
    )


def _list(decl: dict, key: str, where: str) -> list:
    value = decl.get(key)
    if not isinstance(value, list) or not value or len(value) > MAX_PARAMS:
        raise SpecError(f"{where}: {key} must be a non-empty list (at most {MAX_PARAMS})")
    return value
