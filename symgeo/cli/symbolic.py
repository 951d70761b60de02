"""The symbolic commands: derive, list, kl, divergence, entropy, check."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import sympy as sp

from .. import catalog, render
from ..errors import InvalidArgumentError, SymgeoError
from ..geometry import Geometry
from ..load import load_family, parse_point, rational

EXIT_PARTIAL = 3  # derive: what finished within the budget was printed, the rest named


def geometry(args) -> Geometry:
    return Geometry(load_family(args.family, args.chart), timeout=args.timeout,
                    cache=not args.no_cache)


def _alpha(text, geo: Geometry):
    if text is None:
        return None
    if text.strip() == "alpha":
        return geo.alpha_symbol
    return rational(text, "--alpha")


def cmd_derive(args) -> int:
    from ..staged import Failure, run_stages
    geo = geometry(args)
    alpha = _alpha(args.alpha, geo)
    stages = render.stages(geo, alpha, args.format)
    known = {name: geo.stored(f"failure_{name}", owner="cli") for name, _ in stages}
    known = {k: v for k, v in known.items() if isinstance(v, Failure)}
    outcome = run_stages(stages, budget=args.budget, memory_bytes=int(args.memory * 2 ** 30),
                         required=("fisher",), known=known,
                         on_failure=lambda name, failure: geo.store(f"failure_{name}", failure, owner="cli"),
                         progress=lambda message: print(f"symgeo: {message}", file=sys.stderr, flush=True))
    for name in outcome.values:
        if name in known:
            geo.store(f"failure_{name}", None, owner="cli")
    print(render.document(geo, args.format, outcome))
    if outcome.complete:
        return 0
    reasons = "; ".join(f.reason for f in outcome.unfinished.values())
    print(f"symgeo: partial result: {reasons}", file=sys.stderr)
    return EXIT_PARTIAL


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


NAMES = {
    "kl": "KL(p1 || p2)",
    "reverse_kl": "KL(p2 || p1)",
    "jeffreys": "J(p1, p2)",
    "renyi": "D_{a}(p1 || p2)",
    "alpha": "D^({a})(p1 || p2)",
    "bhattacharyya": "B(p1, p2)",
    "hellinger_squared": "H²(p1, p2)",
}


def cmd_divergence(args) -> int:
    """A divergence between two members: closed form (via A, or declared with the family) or quadrature."""
    from ..divergence import NUMERIC, divergence_at
    geo = geometry(args)
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
    from ..divergence import NUMERIC, entropy_at
    geo = geometry(args)
    point = parse_point(args.at, geo.family)
    result = entropy_at(geo, point)
    if args.json:
        print(
            json.dumps(
                {
                    "family": geo.family.name,
                    "at": {str(k): str(v) for k, v in point.items()},
                    "entropy": result.value,
                    "formula": None if result.formula is None else str(result.formula),
                    "method": result.method,
                    "error": result.error,
                }
            )
        )
    elif result.method == NUMERIC:
        print(f"H by quadrature (no closed form found), error ≈ {result.error:.1e}")
        print(repr(result.value))
    else:
        print(f"H = {result.formula}")
        print(repr(result.value))
    return 0


def cmd_check(args) -> int:
    """A user's function against symgeo's exact quantity: a table, exit 0 (agrees) or 1 (disagrees)."""
    from ..testing import QUANTITIES, compare
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
        rows = [
            ("function", "family", "quantity", "comparisons", "max rel. error", "verdict"),
            (
                args.function,
                report.family,
                report.quantity,
                str(report.comparisons),
                f"{report.max_relative:.2e}",
                "agrees" if report.passed else f"{len(report.failures)} disagree",
            ),
        ]
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
    from ..timebound import TimeBoundExceeded, call_with_timeout
    try:
        text = call_with_timeout(_simplified_text, (formula, point), EXACT_SECONDS)
    except (TimeBoundExceeded, RuntimeError):
        return None
    return text if len(text) <= EXACT_CHARS else None


def _simplified_text(formula, point) -> str:
    return str(sp.simplify(formula.xreplace(point)))
