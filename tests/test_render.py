"""symgeo.render: one LaTeX printer for derive, the report and notebooks; long displays broken, not shrunk."""
import re

import sympy as sp

from symgeo import Geometry, catalog
from symgeo.cli import main
from symgeo.divergence import alpha_divergence, pair_symbols
from symgeo.render import LINE_WIDTH, display, latex, named_parts, width
from symgeo.report import family_report


def test_one_printer_everywhere(capsys):
    geo = Geometry(catalog.get("gamma"), cache=False)
    assert main(["derive", "gamma", "--format", "latex", "--no-cache"]) == 0
    derived = capsys.readouterr().out
    for tex in (derived, family_report(geo), geo._repr_latex_()):
        assert r"\psi^{(1)}\left(k\right)" in tex
        assert "polygamma" not in tex


def test_a_long_sum_runs_over_lines_each_within_the_width():
    x = sp.symbols("x1:30")
    tex = display("f", sum(sp.exp(xi) * xi ** 2 for xi in x))
    assert tex.startswith("\\begin{multline*}")
    lines = tex.split("\n")[1:-2]
    assert len(lines) > 2
    assert all(width(line.rstrip("\\ ")) <= LINE_WIDTH for line in lines)


def test_a_long_sum_inside_a_function_is_named_and_the_names_substitute_back():
    a, b, u1 = sp.symbols("a b u_{1}")
    inner = sum(sp.Symbol(f"y{i}") * a ** i for i in range(12))
    expr = 4 * u1 * sp.sqrt(1 + sp.exp(inner)) / (1 - b ** 2)  # u_{1} is taken: names avoid it
    parts = named_parts("D", expr)
    assert len(parts) > 1
    names = {sp.Symbol(re.sub(r"\s", "", lhs)): part for lhs, part in parts[1:]}
    assert sp.Symbol("u_{1}") not in names
    rebuilt = parts[0][1]
    for _ in names:
        rebuilt = rebuilt.xreplace(names)
    assert sp.simplify(rebuilt - expr) == 0
    assert all(width(latex(part)) <= LINE_WIDTH or isinstance(part, sp.Add) for _, part in parts)


def test_the_reports_alpha_divergence_is_not_one_shrunk_line():
    geo = Geometry(catalog.get("normal"), cache=False)
    a, b = pair_symbols(geo)
    tex = display(r"D_{\alpha}", alpha_divergence(geo, a, b, geo.alpha_symbol))
    assert "where" in tex
    for line in tex.splitlines():
        if line.startswith(r"\eq{"):
            assert width(line[4:-1]) <= LINE_WIDTH + 1
