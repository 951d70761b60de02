"""How symgeo's formulas are written out: text and JSON strings, LaTeX displays (with symgeo.printer's ψ,
ψ⁽ⁿ⁾ and log Γ: `derive --format latex`, the report), and the stages of `symgeo derive` in each format.

A LaTeX display wider than the line is broken, not shrunk: a long sum runs over several lines, and a long
sum inside a product, a power or a function is named (u₁, u₂, …) and given on lines of its own.

>>> latex(sp.polygamma(1, sp.Symbol("k")))
'\\\\psi^{(1)}\\\\left(k\\\\right)'
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import sympy as sp

from .printer import Printer, latex

if TYPE_CHECKING:
    from .geometry import Geometry


BIG_SUM = 100  # terms: a sum this long is printed in SymPy's stored order, not sorted again


def text(expr) -> str:
    """str, except that long expanded polynomials skip the printer's term sorting (half of the
    multivariate normal's d = 4 skewness output time); the text still sympifies to the same value."""
    near = [expr] + list(getattr(expr, "args", ()))
    near += [b for a in near[1:] for b in getattr(a, "args", ())]
    if any(isinstance(a, sp.Add) and len(a.args) > BIG_SUM for a in near):
        return sp.sstr(expr, order="none")
    return str(expr)


def texts(nested):
    """`text` over nested lists (matrices, arrays)."""
    if isinstance(nested, list):
        return [texts(x) for x in nested]
    return text(nested)


# -- LaTeX displays ---------------------------------------------------------------------------------
# estimated glyphs of an 11pt display line on A4 with the report's margins (kept short: the estimate is rough)
LINE_WIDTH = 50
SHORTEST_NAMED = 12  # a sum narrower than this is not worth a name of its own
SHORT_SCRIPT = 8


def width(tex: str) -> float:
    """Printed width of LaTeX source in glyphs, roughly: a fraction is as wide as the wider of its parts,
    a short script counts 0.7 (a long one in full: it must be read), a command one glyph, braces and sizing
    commands nothing."""
    return _width(tex, 0)[0]


def _width(tex: str, i: int, stop: str = "") -> tuple[float, int]:
    total = 0.0
    while i < len(tex) and tex[i] not in stop:
        c = tex[i]
        if c == "\\":
            name = re.match(r"\\([a-zA-Z]+|.)", tex[i:]).group(1)
            i += 1 + len(name)
            if name == "frac":
                top, i = _group(tex, i)
                bottom, i = _group(tex, i)
                total += max(top, bottom)
            elif name not in _INVISIBLE:
                total += 1
        elif c in "^_":
            part, i = _group(tex, i + 1)
            total += 0.7 * part if part <= SHORT_SCRIPT else part  # a long exponent is read at full size
        elif c == "{":
            part, i = _group(tex, i)
            total += part
        else:
            total += 0 if c.isspace() or c == "}" else 1
            i += 1
    return total, i


def _group(tex: str, i: int) -> tuple[float, int]:
    """Width of the braced group (or single token) at i, and the index after it."""
    while i < len(tex) and tex[i].isspace():
        i += 1
    if i < len(tex) and tex[i] == "{":
        part, i = _width(tex, i + 1, "}")
        return part, i + 1
    return (1.0, i + 1) if i < len(tex) else (0.0, i)


_INVISIBLE = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", ",", ";", "!", " ", "quad"}


def display(lhs: str, expr) -> str:
    """LaTeX of `lhs = expr` as one or more displays, none wider than the line where it can be helped."""
    parts = [
        _single(name, latex(part))
        if width(name) + width(latex(part)) <= LINE_WIDTH or len(_terms(part)) == 1
        else _multiline(name, _terms(part))
        for name, part in named_parts(lhs, expr)
    ]
    return parts[0] + ("where\n" if len(parts) > 1 else "") + "".join(parts[1:])


def named_parts(lhs: str, expr) -> list[tuple[str, sp.Expr]]:
    """[(lhs, expr with long inner sums replaced by names), (name, sum), …]: each part fits the line or is a
    sum whose terms do (so it can run over several lines). Substituting the names back gives `expr`."""
    expr = sp.sympify(expr)
    taken = {str(s) for s in expr.free_symbols}
    names = (sp.Symbol(f"u_{{{k}}}") for k in range(1, 10_000) if f"u_{{{k}}}" not in taken)
    return _parts(lhs, expr, names)


def _parts(lhs: str, expr, names) -> list:
    if width(lhs) + width(latex(expr)) <= LINE_WIDTH:
        return [(lhs, expr)]
    terms = _terms(expr)
    if len(terms) > 1 and all(width(t) <= LINE_WIDTH for t in terms):
        return [(lhs, expr)]
    inner = _widest_sum(expr)
    if inner is None:
        return [(lhs, expr)]  # nothing to break at: scaled to the line as a last resort
    name = next(names)
    return _parts(lhs, expr.xreplace({inner: name}), names) + _parts(latex(name), inner, names)


def _single(lhs: str, tex: str) -> str:
    return rf"\eq{{{lhs} = {tex}}}" + "\n"


def _multiline(lhs: str, terms: list[str]) -> str:
    lines, line = [], f"{lhs} = {terms[0]}"
    for term in terms[1:]:
        joined = term if term.startswith("-") else f"+ {term}"
        if width(line) + width(joined) > LINE_WIDTH:
            lines.append(line)
            line = joined
        else:
            line += " " + joined
    lines.append(line)
    return "\\begin{multline*}\n" + " \\\\\n".join(lines) + "\n\\end{multline*}\n"


def _terms(expr) -> list[str]:
    """The LaTeX of a sum's terms in the printer's order, each with its own sign."""
    if not isinstance(expr, sp.Add):
        return [latex(expr)]
    return [latex(t) for t in Printer()._as_ordered_terms(expr)]


def _widest_sum(expr):
    """The widest sum strictly inside `expr`, worth naming, or None."""
    sums = [a for a in sp.preorder_traversal(expr) if isinstance(a, sp.Add) and a is not expr]
    widths = [(width(latex(a)), i) for i, a in enumerate(sums)]
    widths = [(w, i) for w, i in widths if w >= SHORTEST_NAMED]
    return sums[max(widths)[1]] if widths else None


# -- the stages of `symgeo derive` ------------------------------------------------------------------
# In the order they are computed: what is cheap and most wanted first, curvature last.
STAGES = ("fisher", "inverse_fisher", "cramer_rao", "christoffel", "geodesic_equations", "jeffreys_prior",
          "exponential_family", "skewness", "alpha_christoffel", "scalar_curvature")
FORMATS = ("text", "latex", "json")


def stages(geo: Geometry, alpha, fmt: str) -> list:
    """[(stage, fn)] for one output format; each fn renders its stage (printing a large family's
    expressions costs more than deriving them, so the rendering is kept with the geometry)."""
    render = {"json": _JSON, "text": _TEXT, "latex": _LATEX}[fmt]
    names = [n for n in STAGES if n in render and (n != "alpha_christoffel" or alpha is not None)]

    def stage(name):
        key = f"{fmt}_{name}" + (f"_{alpha}" if name == "alpha_christoffel" else "")
        return name, lambda: geo.extension("render", key, lambda: render[name](geo, alpha))
    return [stage(n) for n in names]


def derivation(geo: Geometry, alpha=None) -> dict:
    """The JSON contract of `symgeo derive --format json` (expressions as sympify-able strings),
    computed in this process without a budget."""
    out = _json_header(geo)
    for _, compute in stages(geo, alpha, "json"):
        out.update(compute())
    return out


def document(geo: Geometry, fmt: str, outcome) -> str:
    """The output of `symgeo derive`: the finished stages of `outcome` and what did not finish."""
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


def _json_header(geo: Geometry) -> dict:
    fam = geo.family
    return {"family": fam.name, "chart": fam.chart, "params": [str(p) for p in fam.params]}


def _json_fisher(geo, _):
    from .expectation import kind
    g = geo.fisher
    return {"fisher": texts(g.tolist()), "fisher_route": geo.fisher_route, "notes": list(geo.notes),
            "fisher_kinds": [[kind(e) for e in row] for row in g.tolist()]}


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


_JSON = {
    "fisher": _json_fisher,
    "inverse_fisher": lambda geo, _: {"inverse_fisher": texts(geo.inverse_fisher.tolist())},
    "cramer_rao": lambda geo, _: {"cramer_rao": texts(geo.cramer_rao().tolist())},
    "christoffel": lambda geo, _: {"christoffel": texts(geo.christoffel().tolist())},
    "geodesic_equations": lambda geo, _: {"geodesic_equations": {str(k): str(v) for k, v in
                                                                 geo.geodesic_equations().items()}},
    "jeffreys_prior": lambda geo, _: {"jeffreys_prior": text(geo.jeffreys_prior)},
    "exponential_family": lambda geo, _: {"exponential_family": _exponential_json(geo)},
    "skewness": lambda geo, _: {"skewness": texts(geo.skewness.tolist())},
    "alpha_christoffel": lambda geo, alpha: {"alpha": str(alpha),
                                             "alpha_christoffel": texts(geo.christoffel(alpha).tolist())},
    "scalar_curvature": lambda geo, _: {"scalar_curvature": text(geo.scalar_curvature)},
}
_JSON_KEYS = {"fisher": ("fisher", "fisher_route", "notes", "fisher_kinds"),
              "alpha_christoffel": ("alpha", "alpha_christoffel")}


def _text_fisher(geo, _):
    from .expectation import is_represented, kind
    fam, params, g = geo.family, geo.family.params, geo.fisher
    lines = [(f"exponential family: {'yes' if geo.exponential_family is not None else 'no'}   "
              f"Fisher route: {geo.fisher_route}"), "", "Fisher metric g_ij:"]
    lines += [
        f"  g[{params[i]},{params[j]}] = {g[i, j]}"
        + (f"   [{kind(g[i, j])}]" if is_represented(g[i, j]) else "")
        for i in range(fam.n)
        for j in range(i, fam.n)
    ]
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
    return [rf"\Gamma^{{{latex(p[k])}}}_{{{latex(p[i])}{latex(p[j])}}} = {latex(gam[k, i, j])}"
            for k in range(n) for i in range(n) for j in range(i, n) if gam[k, i, j] != 0]


_LATEX = {
    "fisher": lambda geo, _: [rf"g = {latex(geo.fisher)}"],
    "inverse_fisher": lambda geo, _: [rf"g^{{-1}} = {latex(geo.inverse_fisher)}"],
    "scalar_curvature": lambda geo, _: [rf"R = {latex(geo.scalar_curvature)}"],
    "christoffel": _latex_christoffel,
}
