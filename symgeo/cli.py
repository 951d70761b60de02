"""The `symgeo` command line. Bad input exits 2 with one line on stderr, never a traceback."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import sympy as sp

from . import catalog
from .divergence import KINDS
from .errors import InvalidArgumentError, SymgeoError
from .expectation import DEFAULT_TIMEOUT
from .geometry import Geometry
from .load import load_family, parse_point, rational

EXIT_BAD_INPUT = 2
MAX_SAMPLES = 10_000_000  # Monte Carlo draws for verify: a few GB at most


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"symgeo: {message}\n")


def _geometry(args) -> Geometry:
    return Geometry(load_family(args.family, args.chart), timeout=args.timeout,
                    cache=not args.no_cache)


# -- derive ---------------------------------------------------------------------------------------
# Stages in the order they are computed: what is cheap and most wanted first, curvature last.
STAGES = ("fisher", "inverse_fisher", "cramer_rao", "christoffel", "geodesic_equations", "jeffreys_prior",
          "exponential_family", "skewness", "alpha_christoffel", "scalar_curvature")
EXIT_PARTIAL = 3
DEFAULT_BUDGET = 300.0
DEFAULT_MEMORY_GIB = 8.0


def derivation(geo: Geometry, alpha=None) -> dict:
    """The JSON contract of `symgeo derive --format json` (expressions as sympify-able strings),
    computed in this process without a budget."""
    out = _json_header(geo)
    for _, compute in _stages(geo, alpha, "json"):
        out.update(compute())
    return out


def _stages(geo: Geometry, alpha, fmt: str) -> list:
    """[(stage, fn)] for one output format; each fn renders its stage (printing a large family's
    expressions costs more than deriving them, so the rendering is cached with the geometry)."""
    render = {"json": _JSON, "text": _TEXT, "latex": _LATEX}[fmt]
    names = [n for n in STAGES if n in render and (n != "alpha_christoffel" or alpha is not None)]

    def stage(name):
        key = f"{fmt}_{name}" + (f"_{alpha}" if name == "alpha_christoffel" else "")
        return name, lambda: geo.memo(key, lambda: render[name](geo, alpha))
    return [stage(n) for n in names]


def _json_header(geo: Geometry) -> dict:
    fam = geo.family
    return {"family": fam.name, "chart": fam.chart, "params": [str(p) for p in fam.params]}


def _json_fisher(geo, _):
    from .expectation import kind
    g = geo.fisher
    return {"fisher": _strs(g.tolist()), "fisher_route": geo.fisher_route, "notes": list(geo.notes),
            "fisher_kinds": [[kind(e) for e in row] for row in g.tolist()]}


_JSON = {
    "fisher": _json_fisher,
    "inverse_fisher": lambda geo, _: {"inverse_fisher": _strs(geo.inverse_fisher.tolist())},
    "cramer_rao": lambda geo, _: {"cramer_rao": _strs(geo.cramer_rao().tolist())},
    "christoffel": lambda geo, _: {"christoffel": _strs(geo.christoffel().tolist())},
    "geodesic_equations": lambda geo, _: {"geodesic_equations": {str(k): str(v) for k, v in
                                                                 geo.geodesic_equations().items()}},
    "jeffreys_prior": lambda geo, _: {"jeffreys_prior": _str(geo.jeffreys_prior)},
    "exponential_family": lambda geo, _: {"exponential_family": _exponential_json(geo)},
    "skewness": lambda geo, _: {"skewness": _strs(geo.skewness.tolist())},
    "alpha_christoffel": lambda geo, alpha: {"alpha": str(alpha),
                                             "alpha_christoffel": _strs(geo.christoffel(alpha).tolist())},
    "scalar_curvature": lambda geo, _: {"scalar_curvature": _str(geo.scalar_curvature)},
}
_JSON_KEYS = {"fisher": ("fisher", "fisher_route", "notes", "fisher_kinds"), "alpha_christoffel": ("alpha", "alpha_christoffel")}


def _exponential_json(geo: Geometry):
    ef = geo.exponential_family
    if ef is None:
        return None
    return {
        "natural_params": [str(t) for t in ef.natural_of_params],
        "sufficient_statistics": [str(t) for t in ef.stats],
        "log_partition": str(ef.log_partition_of_params),
        "expectation_params": [str(e) for e in geo.expectation_params],
        "log_base_measure": str(ef.log_base_measure),
    }


def _strs(nested):
    if isinstance(nested, list):
        return [_strs(x) for x in nested]
    return _str(nested)


BIG_SUM = 100  # terms: a sum this long is printed in SymPy's stored order, not sorted again


def _str(expr) -> str:
    """str, except that long expanded polynomials skip the printer's term sorting (half of the
    multivariate normal's d = 4 skewness output time); the text still sympifies to the same value."""
    near = [expr] + list(getattr(expr, "args", ()))
    near += [b for a in near[1:] for b in getattr(a, "args", ())]
    if any(isinstance(a, sp.Add) and len(a.args) > BIG_SUM for a in near):
        return sp.sstr(expr, order="none")
    return str(expr)


# text: each stage is a list of lines
def _text_fisher(geo, _):
    from .expectation import is_represented, kind
    fam, params, g = geo.family, geo.family.params, geo.fisher
    lines = [f"exponential family: {'yes' if geo.exponential_family is not None else 'no'}   "
             f"Fisher route: {geo.fisher_route}", "", "Fisher metric g_ij:"]
    lines += [f"  g[{params[i]},{params[j]}] = {g[i, j]}" + (f"   [{kind(g[i, j])}]" if is_represented(g[i, j]) else "")
              for i in range(fam.n) for j in range(i, fam.n)]
    if geo.notes:
        lines += ["", "notes:"] + [f"  {note}" for note in geo.notes]
    return lines


def _text_symbols(title, gam, params, n):
    lines = ["", title]
    lines += [f"  Γ^{params[k]}_({params[i]},{params[j]}) = {gam[k, i, j]}" for k in range(n)
              for i in range(n) for j in range(i, n) if gam[k, i, j] != 0] or ["  (all zero)"]
    return lines


def _text_skewness(geo, _):
    params, n, skew = geo.family.params, geo.family.n, geo.skewness
    lines = ["", "Amari–Chentsov skewness T_ijk (nonzero, i <= j <= k):"]
    return lines + ([f"  T_({params[i]},{params[j]},{params[k]}) = {skew[i, j, k]}" for i in range(n)
                     for j in range(i, n) for k in range(j, n) if skew[i, j, k] != 0] or ["  (all zero)"])


def _text_curvature(geo, _):
    lines = ["", f"scalar curvature R = {geo.scalar_curvature}"]
    if geo.family.n == 2:
        lines.append(f"Gaussian curvature K = {geo.gaussian_curvature}")
    return lines


_TEXT = {
    "fisher": _text_fisher,
    "christoffel": lambda geo, _: _text_symbols("Christoffel symbols Γ^k_ij (nonzero, i <= j):",
                                                geo.christoffel(), geo.params, geo.family.n),
    "geodesic_equations": lambda geo, _: ["", "geodesic equations:"] + [
        f"  {p}'' = {rhs}" for p, rhs in geo.geodesic_equations().items()],
    "jeffreys_prior": lambda geo, _: ["", f"Jeffreys prior ∝ {geo.jeffreys_prior}"],
    "skewness": _text_skewness,
    "alpha_christoffel": lambda geo, alpha: _text_symbols(
        f"α-connection Γ^(α)k_ij for α = {alpha} (nonzero, i <= j):", geo.christoffel(alpha), geo.params,
        geo.family.n),
    "scalar_curvature": _text_curvature,
}


def _latex_christoffel(geo, _):
    gam, p, n = geo.christoffel(), geo.params, geo.family.n
    return [rf"\Gamma^{{{sp.latex(p[k])}}}_{{{sp.latex(p[i])}{sp.latex(p[j])}}} = {sp.latex(gam[k, i, j])}"
            for k in range(n) for i in range(n) for j in range(i, n) if gam[k, i, j] != 0]


_LATEX = {
    "fisher": lambda geo, _: [rf"g = {sp.latex(geo.fisher)}"],
    "inverse_fisher": lambda geo, _: [rf"g^{{-1}} = {sp.latex(geo.inverse_fisher)}"],
    "scalar_curvature": lambda geo, _: [rf"R = {sp.latex(geo.scalar_curvature)}"],
    "christoffel": _latex_christoffel,
}


def _alpha(text, geo: Geometry):
    if text is None:
        return None
    if text.strip() == "alpha":
        return geo.alpha_symbol
    return rational(text, "--alpha")


def cmd_derive(args) -> int:
    from .staged import Failure, run_stages
    geo = _geometry(args)
    alpha = _alpha(args.alpha, geo)
    stages = _stages(geo, alpha, args.format)
    known = {name: geo.stored(f"failure_{name}") for name, _ in stages}
    known = {k: v for k, v in known.items() if isinstance(v, Failure)}
    outcome = run_stages(stages, budget=args.budget, memory_bytes=int(args.memory * 2 ** 30),
                         required=("fisher",), known=known,
                         on_failure=lambda name, failure: geo.store(f"failure_{name}", failure),
                         progress=lambda message: print(f"symgeo: {message}", file=sys.stderr, flush=True))
    for name in outcome.values:
        if name in known:
            geo.store(f"failure_{name}", None)
    print(_render(geo, args.format, outcome))
    if outcome.complete:
        return 0
    reasons = "; ".join(f.reason for f in outcome.unfinished.values())
    print(f"symgeo: partial result: {reasons}", file=sys.stderr)
    return EXIT_PARTIAL


def _render(geo: Geometry, fmt: str, outcome) -> str:
    if fmt == "json":
        out = _json_header(geo)
        for name in outcome.values:
            out.update(outcome.values[name])
        for name in outcome.unfinished:
            out.update(dict.fromkeys(_JSON_KEYS.get(name, (name,))))
        if outcome.unfinished:
            out["unfinished"] = {name: f.reason for name, f in outcome.unfinished.items()}
        return json.dumps(out, indent=2, ensure_ascii=False)
    fam = geo.family
    if fmt == "latex":
        lines = [rf"% symgeo derivation: {fam.name} ({fam.chart})"]
    else:
        lines = [f"family: {fam.name}   chart: {fam.chart}   parameters: {', '.join(map(str, fam.params))}"]
    for value in outcome.values.values():
        lines += value
    if outcome.unfinished:
        comment = "% " if fmt == "latex" else "  "
        lines += ["", ("% " if fmt == "latex" else "") + "not finished:"]
        lines += [comment + f.reason for f in outcome.unfinished.values()]
    return "\n".join(lines)


def cmd_list(args) -> int:
    rows = []
    for name in catalog.names():
        fam = catalog.get(name)
        kind = "exponential" if fam.is_exponential else "general"
        charts = ", ".join([fam.chart] + sorted(fam.charts))
        rows.append((name, ", ".join(map(str, fam.params)), charts, kind, catalog.description(name)))
    if args.json:
        print(json.dumps([dict(zip(("name", "params", "charts", "kind", "description"), r)) for r in rows],
                         indent=2, ensure_ascii=False))
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("family", "parameters", "charts", "kind")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)))
    return 0


def cmd_kl(args) -> int:
    args.kind, args.order = "kl", None
    return cmd_divergence(args)


NAMES = {"kl": "KL(p1 || p2)", "reverse_kl": "KL(p2 || p1)", "jeffreys": "J(p1, p2)", "renyi": "D_{a}(p1 || p2)",
         "alpha": "D^({a})(p1 || p2)", "bhattacharyya": "B(p1, p2)", "hellinger_squared": "H²(p1, p2)"}


def cmd_divergence(args) -> int:
    """A divergence between two members: closed form (via A, or declared with the family) or quadrature."""
    from .divergence import NUMERIC, divergence_at
    geo = _geometry(args)
    p1, p2 = parse_point(args.from_, geo.family), parse_point(args.to, geo.family)
    order = None if args.order is None else rational(args.order, "--order")
    result = divergence_at(geo, args.kind, p1, p2, order)
    exact = None if result.method == NUMERIC else _exact_value(result.formula, result.point)
    name = NAMES[args.kind].format(a=order)
    if args.json:
        print(json.dumps({"family": geo.family.name, "from": {str(k): str(v) for k, v in p1.items()},
                          "to": {str(k): str(v) for k, v in p2.items()}, "divergence": args.kind,
                          "order": None if order is None else str(order), args.kind: result.value,
                          "exact": exact, "formula": None if result.formula is None else str(result.formula),
                          "method": result.method, "error": result.error}))
    elif result.method == NUMERIC:
        print(f"{name} by quadrature (no closed form known here), error ≈ {result.error:.1e}")
        print(repr(result.value))
    else:
        print(f"{name} = {result.formula}" + ("  (declared closed form, checked against quadrature)"
                                               if result.method != "closed form" else ""))
        if exact is not None:
            print(f"exact: {exact}")
        print(repr(result.value))
    return 0


def cmd_entropy(args) -> int:
    """The entropy −E[log p]: its formula (expectation engine) and value at a point, or quadrature."""
    from .divergence import NUMERIC, entropy_at
    geo = _geometry(args)
    point = parse_point(args.at, geo.family)
    result = entropy_at(geo, point)
    if args.json:
        print(json.dumps({"family": geo.family.name, "at": {str(k): str(v) for k, v in point.items()},
                          "entropy": result.value, "formula": None if result.formula is None else str(result.formula),
                          "method": result.method, "error": result.error}))
    elif result.method == NUMERIC:
        print(f"H by quadrature (no closed form found), error ≈ {result.error:.1e}")
        print(repr(result.value))
    else:
        print(f"H = {result.formula}")
        print(repr(result.value))
    return 0


def cmd_check(args) -> int:
    """A user's function against symgeo's exact quantity: a table, exit 0 (agrees) or 1 (disagrees)."""
    from .testing import QUANTITIES, compare
    if args.quantity not in QUANTITIES:
        raise InvalidArgumentError(f"--quantity must be one of {', '.join(QUANTITIES)}")
    fn = _user_function(args.function)
    order = None if args.order is None else rational(args.order, "--order")
    family = args.family if not args.chart else load_family(args.family, args.chart)
    report = compare(fn, family, args.quantity, rtol=args.rtol, atol=args.atol, n=args.n, seed=args.seed,
                     order=order)
    if args.json:
        print(json.dumps({"function": args.function, "family": report.family, "quantity": report.quantity,
                          "comparisons": report.comparisons, "max_relative_error": report.max_relative,
                          "rtol": args.rtol, "passed": report.passed, "failures": report.failures}))
    else:
        rows = [("function", "family", "quantity", "comparisons", "max rel. error", "verdict"),
                (args.function, report.family, report.quantity, str(report.comparisons),
                 f"{report.max_relative:.2e}", "agrees" if report.passed else f"{len(report.failures)} disagree")]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        for failure in report.failures[:3]:
            print("\n" + failure)
    return 0 if report.passed and report.comparisons else 1


def _user_function(spec: str):
    """MODULE:FUNCTION (importable from the current folder) or path/to/file.py:FUNCTION."""
    import importlib
    import importlib.util
    module_name, _, name = spec.rpartition(":")
    if not module_name or not name.isidentifier():
        raise InvalidArgumentError(f"give the function as MODULE:FUNCTION or FILE.py:FUNCTION, not {spec!r}")
    try:
        if module_name.endswith(".py"):
            loader = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if loader is None or not Path(module_name).is_file():
                raise InvalidArgumentError(f"no such file: {module_name}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except SymgeoError:
        raise
    except Exception as err:  # noqa: BLE001 (the user's module failing to import is bad input here)
        raise InvalidArgumentError(f"cannot import {module_name}: {type(err).__name__}: {err}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise InvalidArgumentError(f"{module_name} has no function {name}")
    return fn


EXACT_SECONDS = 2.0
EXACT_CHARS = 400


def _exact_value(formula, point) -> str | None:
    """The exact value as text when SymPy simplifies it briefly to something short; else None
    (digamma at 10**5 is an exact harmonic number: the float is the answer then)."""
    from .timebound import TimeBoundExceeded, call_with_timeout
    try:
        text = call_with_timeout(_simplified_text, (formula, point), EXACT_SECONDS)
    except (TimeBoundExceeded, RuntimeError):
        return None
    return text if len(text) <= EXACT_CHARS else None


def _simplified_text(formula, point) -> str:
    return str(sp.simplify(formula.xreplace(point)))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symgeo", description="Symbolic information geometry of parametric families.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)

    p = sub.add_parser("list", help="the catalog of families")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("derive", help="derive a family's geometry")
    p.add_argument("family", help="catalog name (normal, categorical:k=4, ...) or a .toml spec file")
    p.add_argument("--chart", help="derive in this named chart (see symgeo list)")
    p.add_argument("--format", choices=("text", "latex", "json"), default="text")
    p.add_argument("--alpha", help="also give the α-connection symbols for this α (1, -1, 1/2, or 'alpha' for symbolic)")
    p.add_argument("--budget", type=_positive("--budget"), default=DEFAULT_BUDGET,
                   help=f"seconds for the whole derivation (default {DEFAULT_BUDGET:g}); what finished "
                        f"within it is printed, the rest named, exit {EXIT_PARTIAL}")
    p.add_argument("--memory", type=_positive("--memory"), default=DEFAULT_MEMORY_GIB,
                   help=f"GiB of memory for the derivation (default {DEFAULT_MEMORY_GIB:g})")
    _common(p, limits=False)
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("kl", help="KL divergence between two members (closed form where known, else quadrature)")
    _divergence_arguments(p)
    p.set_defaults(func=cmd_kl)

    p = sub.add_parser("divergence", help="a divergence between two members (closed form where known, "
                                          "else quadrature with its error)")
    _divergence_arguments(p)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--order", help="Rényi's order a (> 0, ≠ 1) or Amari's α (≠ ±1), e.g. 1/2")
    p.set_defaults(func=cmd_divergence)

    p = sub.add_parser("entropy", help="the entropy −E[log p]: formula and value at a point")
    p.add_argument("family", help="a catalog family or a .toml spec file")
    p.add_argument("--at", required=True, help="the point, e.g. mu=0,sigma=1")
    p.add_argument("--chart", help="read the point in this chart")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_entropy)

    p = sub.add_parser("check", help="check your own function against symgeo's exact quantity (exit 0 agrees, "
                                     "1 disagrees)")
    p.add_argument("function", help="MODULE:FUNCTION or FILE.py:FUNCTION; it takes the family's parameters in "
                                    "order (see symgeo.testing.assert_matches)")
    p.add_argument("--family", required=True, help="a catalog family or a .toml spec file")
    p.add_argument("--quantity", required=True, help="fisher, inverse_fisher, christoffel, skewness, log_density, "
                                                     "score, entropy, kl, renyi, ..., fisher_vector_product, "
                                                     "natural_gradient, natural_params, ...")
    p.add_argument("--chart", help="the function takes this chart's parameters")
    p.add_argument("--order", help="Rényi's order or Amari's α, for renyi and alpha")
    p.add_argument("--rtol", type=_positive("--rtol"), default=1e-8)
    p.add_argument("--atol", type=float, default=0.0)
    p.add_argument("-n", dest="n", type=_count("-n", 1, 10_000), default=20, help="points (pairs) to try")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("distance", help="Fisher–Rao distance (closed form where known, else the geodesic BVP)")
    _two_points(p)
    p.add_argument("--method", choices=("auto", "closed", "quadrature", "shooting"), default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_numeric("cmd_distance"))

    p = sub.add_parser("geodesic", help="the geodesic between two members, as a table (and a plot)")
    _two_points(p)
    p.add_argument("--points", type=_count("--points", 2, 100_000), default=21,
                   help="number of points along the path (default 21)")
    p.add_argument("--plot", metavar="FILE", type=_output_file("--plot"), help="draw the path in the parameter plane (PNG, PDF, SVG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_numeric("cmd_geodesic"))

    p = sub.add_parser("verify", help="check the derived formulas against independent numerics; "
                                      "exits 1 if a check fails")
    p.add_argument("family", help="catalog name or a .toml spec file")
    p.add_argument("--chart", help="verify in this named chart")
    p.add_argument("--samples", type=_count("--samples", 1000, MAX_SAMPLES), default=100_000, help="Monte Carlo sample size (default 100000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_numeric("cmd_verify"))

    p = sub.add_parser("report", help="a LaTeX (and PDF) document of a family's derivation, or of the claims")
    p.add_argument("family", nargs="?", help="catalog name or a .toml spec file")
    p.add_argument("-o", "--output", required=True, type=_output_file("--output"), help="the .tex file to write")
    p.add_argument("--chart", help="derive in this named chart")
    p.add_argument("--pdf", action="store_true", help="also compile it with pdflatex")
    p.add_argument("--claims", action="store_true", help="the seed article's claims instead of a family")
    p.add_argument("--no-figures", action="store_true", help="leave the family's figure out")
    _common(p)
    p.set_defaults(func=_numeric("cmd_report"))

    p = sub.add_parser("figures", help="regenerate the project's figures (seeded PNGs)")
    p.add_argument("--out", default="figures", type=_output_folder("--out"), help="output folder (default figures/)")
    p.add_argument("--only", action="append", metavar="NAME", help="only this figure (repeatable)")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.add_argument("--seed", type=int, default=0)
    _limits(p, seconds=3600.0)
    p.set_defaults(func=_numeric("cmd_figures"))
    return parser


def _divergence_arguments(p) -> None:
    p.add_argument("family", help="a catalog family or a .toml spec file")
    p.add_argument("--from", dest="from_", required=True, help="first point, e.g. mu=0,sigma=1")
    p.add_argument("--to", required=True, help="second point, e.g. mu=1,sigma=1")
    p.add_argument("--chart", help="read the points in this chart")
    p.add_argument("--json", action="store_true")
    _common(p)


def _two_points(p) -> None:
    p.add_argument("family", help="catalog name or a .toml spec file")
    p.add_argument("--from", dest="from_", required=True, help="first point, e.g. mu=0,sigma=1")
    p.add_argument("--to", required=True, help="second point, e.g. mu=1,sigma=1")
    p.add_argument("--chart", help="read the points in this chart")
    _common(p)


def _count(option: str, low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{option} must be an integer from {low} to {high}, not {text!r}")
        return value
    return parse


def _positive(option: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (0 < value < float("inf")):
            raise argparse.ArgumentTypeError(f"{option} must be a positive number, not {text!r}")
        return value
    return parse


def _output_file(option: str):
    """An argparse type: a file path that can be written (checked before any computation)."""
    def parse(text: str) -> str:
        _writable_place(Path(text), option, folder=False)
        return text
    return parse


def _output_folder(option: str):
    def parse(text: str) -> str:
        _writable_place(Path(text), option, folder=True)
        return text
    return parse


def _writable_place(path: Path, option: str, folder: bool) -> None:
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "not a folder"
        raise argparse.ArgumentTypeError(f"{option} {path}: {kind}")
    existing = path if path.exists() else path.parent
    while not existing.exists():  # missing folders are created; the nearest existing one must take them
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK) or \
            (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{option} {path}: cannot write there")


def _numeric(name: str):
    """A numeric subcommand, imported only when it runs (symgeo never imports numeric at import time)."""
    def run(args) -> int:
        from numeric import commands
        return getattr(commands, name)(args)
    return run


def _common(p, limits: bool = True) -> None:
    p.add_argument("--timeout", type=_positive("--timeout"), default=DEFAULT_TIMEOUT,
                   help=f"seconds per symbolic integral or sum (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--no-cache", action="store_true", help="ignore the on-disk cache")
    if limits:
        _limits(p)


DEFAULT_TIME_LIMIT = 900.0


def _limits(p, seconds: float = DEFAULT_TIME_LIMIT) -> None:
    p.add_argument("--time-limit", type=_positive("--time-limit"), default=seconds,
                   help=f"CPU seconds for the whole command (default {seconds:g})")
    p.add_argument("--memory", type=_positive("--memory"), default=DEFAULT_MEMORY_GIB,
                   help=f"GiB of memory for the command (default {DEFAULT_MEMORY_GIB:g})")


def _bounds(args) -> tuple:
    """(CPU seconds, bytes) for the whole command: derive's budget plus time to print its result."""
    seconds = args.budget + DERIVE_MARGIN if hasattr(args, "budget") else getattr(args, "time_limit", None)
    memory = getattr(args, "memory", None)
    return seconds, None if memory is None else int(memory * 2 ** 30)


DERIVE_MARGIN = 120.0


def entry() -> int:
    """The console script: main() with its time and memory bounds on the process."""
    sys.exit(main(bounded=True))


def main(argv=None, *, bounded: bool = False) -> int:
    """Run one command; `bounded` puts the process under the command's CPU-time and memory limits
    (the console script does; a caller in its own process decides for itself)."""
    from .limits import bounded as limits
    args = build_parser().parse_args(argv)
    try:
        with limits(*_bounds(args)) if bounded else contextlib.nullcontext():
            return args.func(args)
    except MemoryError:
        print(f"symgeo: out of memory (the limit is {getattr(args, 'memory', '?')} GiB: --memory)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ImportError as exc:
        if not bounded or "map" not in str(exc):
            raise
        # a shared library that cannot be mapped under the address-space limit
        print(f"symgeo: out of memory loading {exc.name or 'a module'} (the limit is "
              f"{getattr(args, 'memory', '?')} GiB: --memory)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SymgeoError as exc:  # bad input, said in one line; any other exception is a bug
        print(f"symgeo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into head: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file or folder the command was given cannot be used
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"symgeo: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("symgeo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        print(f"symgeo: internal error ({type(exc).__name__}: {exc}); please report it with the command",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
