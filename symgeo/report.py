"""A family's derivation as a LaTeX document: declaration, density, exponential-family form, dual maps,
Fisher metric, connections, curvature, geodesic equations, divergences, bounds, and figures if given.

Equations go through symgeo's one LaTeX printer (symgeo.render), one component per display; a display wider
than the line is broken across lines (long sums named and given below), and scaled to the line width only
where there is nothing to break at. Only packages of texlive-latex-base.
"""
from __future__ import annotations

from itertools import product

import sympy as sp

from . import duality
from .divergence import alpha_divergence, kl, pair_symbols
from .errors import SymgeoError
from .geometry import Geometry
from .render import display, latex

PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage[margin=2.2cm]{geometry}
\newsavebox{\eqbox}
\newcommand{\fit}[1]{\sbox{\eqbox}{$\displaystyle #1$}%
  \ifdim\wd\eqbox>\linewidth\resizebox{\linewidth}{!}{\usebox{\eqbox}}\else\usebox{\eqbox}\fi}
\newcommand{\eq}[1]{\par\noindent\hfil\fit{#1}\hfil\par\smallskip}
\setlength{\parindent}{0pt}
"""


def _tex(expr) -> str:
    return latex(expr)


def _eq(lhs: str, expr) -> str:
    return display(lhs, expr)


_UNICODE = {
    **{
        chr(0x3B1 + i): rf"$\{name}$"
        for i, name in enumerate(
            [
                "alpha",
                "beta",
                "gamma",
                "delta",
                "epsilon",
                "zeta",
                "eta",
                "theta",
                "iota",
                "kappa",
                "lambda",
                "mu",
                "nu",
                "xi",
                "omicron",
                "pi",
                "rho",
                "varsigma",
                "sigma",
                "tau",
                "upsilon",
                "phi",
                "chi",
                "psi",
                "omega",
            ]
        )
        if name not in ("omicron",)
    },
    "Γ": r"$\Gamma$",
    "Σ": r"$\Sigma$",
    "Θ": r"$\Theta$",
    "Δ": r"$\Delta$",
    "ℓ": r"$\ell$",
    "‖": r"$\|$",
    "→": r"$\to$",
    "↦": r"$\mapsto$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "≈": r"$\approx$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "−": "-",
    "∞": r"$\infty$",
    "∂": r"$\partial$",
    "∇": r"$\nabla$",
    "∈": r"$\in$",
    "⊗": r"$\otimes$",
    "√": r"$\surd$",
    "≠": r"$\neq$",
    "²": r"$^2$",
    "³": r"$^3$",
    "⁻": r"$^-$",
    "¹": r"$^1$",
    "₁": r"$_1$",
    "₂": r"$_2$",
    "ᵀ": r"$^T$",
    "…": r"\dots{}",
    "–": "--",
    "—": "---",
    "é": r"\'e",
    "ψ": r"$\psi$",
}


def _text(s: str) -> str:
    """Plain text for LaTeX: specials escaped, the Unicode math symbols of symgeo's messages mapped."""
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\~{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return "".join(_UNICODE.get(c, c if ord(c) < 128 else "?") for c in s)


def family_report(geo: Geometry, figures=(), title: str | None = None) -> str:
    """The whole document for one geometry; `figures` are (path, caption) pairs to include."""
    body = [_declaration(geo), _exponential(geo), _metric(geo), _connections(geo), _curvature(geo),
            _geodesics(geo), _divergences(geo), _bounds(geo), _figures(figures)]
    name = title or f"Information geometry of the {geo.family.name} family"
    return (PREAMBLE + "\\title{" + _text(name) + "}\n\\date{}\n\\begin{document}\n\\maketitle\n"
            + "".join(b for b in body if b) + "\\end{document}\n")


def _declaration(geo: Geometry) -> str:
    fam = geo.family
    params = ", ".join(f"${_tex(p)} \\in {_tex(fam.domains[p])}$" for p in fam.params)
    out = ["\\section{Declaration}\n",
           (f"Variable(s) ${', '.join(_tex(v) for v in fam.variables)}$ on the support {_support(fam)}; "
            f"parameters {params}; chart: {_text(fam.chart or 'default')}.\n\n"),
           _eq(r"\log p(x \mid \xi)", fam.log_density)]
    return "".join(out)


def _support(fam) -> str:
    return _text(fam.support.describe()).replace("oo", r"$\infty$")


def _exponential(geo: Geometry) -> str:
    ef = geo.exponential_family
    if ef is None:
        return "\\section{Exponential-family form}\nNot an exponential family.\n"
    out = ["\\section{Exponential-family form and dual coordinates}\n",
           r"$p(x\mid\theta) = h(x)\exp(\theta\cdot T(x) - A(\theta))$ with" + "\n"]
    for i, (t, s) in enumerate(zip(ef.natural_of_params, ef.stats), 1):
        out.append(_eq(f"\\theta_{{{i}}}", t))
        out.append(_eq(f"T_{{{i}}}(x)", s))
    out.append(_eq("A", ef.log_partition_of_params))
    out.append(_eq(r"\log h(x)", ef.log_base_measure))
    for i, e in enumerate(geo.expectation_params, 1):
        out.append(_eq(f"\\eta_{{{i}}} = \\partial_{{\\theta_{{{i}}}}} A", e))
    try:
        inverse = duality.natural_from_expectation(geo)
        out.append("Inverse map $\\theta(\\eta)$ (closed form):\n")
        out += [_eq(_tex(t), e) for t, e in inverse.items()]
    except SymgeoError:
        out.append(
            "$\\theta(\\eta)$ has no closed form here; symgeo inverts it numerically (Newton on $A$).\n\n"
        )
    try:
        out.append(_eq(r"A^{*}(\eta) = \theta\cdot\eta - A", duality.dual_potential(geo)))
    except SymgeoError:
        pass
    return "".join(out)


def _matrix_entries(symbol: str, matrix, symmetric: bool = True) -> list:
    n = matrix.shape[0]
    return [_eq(f"{symbol}_{{{i + 1}{j + 1}}}", matrix[i, j]) for i in range(n) for j in range(n)
            if not symmetric or i <= j]


def _metric(geo: Geometry) -> str:
    out = ["\\section{Fisher metric}\n"]
    if len(geo.params) <= 2:
        out.append(f"\\eq{{g = {_tex(geo.fisher)}}}\n")
    else:
        out += _matrix_entries("g", geo.fisher)
    out.append("Inverse:\n")
    out += _matrix_entries("g^{-1}", geo.inverse_fisher)
    return "".join(out)


def _nonzero_components(symbol: str, array, index_names) -> list:
    shape = array.shape
    lines = []
    for idx in product(*(range(s) for s in shape)):
        value = array[idx]
        if sp.simplify(value) != 0:
            lines.append(_eq(symbol(*[index_names[i] for i in idx]), value))
    return lines or ["All components vanish.\n\n"]


def _connections(geo: Geometry) -> str:
    names = [_tex(p) for p in geo.params]
    out = ["\\section{Connections}\n",
           r"Christoffel symbols of the second kind $\Gamma^{(\alpha)k}{}_{ij}$, non-zero components." + "\n"]
    for alpha, label in ((0, "Levi-Civita, $\\alpha = 0$"), (1, "e-connection, $\\alpha = 1$"),
                         (-1, "m-connection, $\\alpha = -1$")):
        out.append(f"\\subsection*{{{label}}}\n")
        out += _nonzero_components(lambda k, i, j, a=alpha: f"\\Gamma^{{({a}) {k}}}{{}}_{{{i} {j}}}",
                                   geo.christoffel(alpha), names)
    out.append("\\subsection*{Amari--Chentsov tensor $T_{ijk} = E[\\partial_i\\ell\\,\\partial_j\\ell\\,"
               "\\partial_k\\ell]$}\n")
    out += _nonzero_components(lambda i, j, k: f"T_{{{i} {j} {k}}}", geo.skewness, names)
    return "".join(out)


def _curvature(geo: Geometry) -> str:
    out = ["\\section{Curvature}\n", _eq("R", geo.scalar_curvature)]
    if len(geo.params) == 2:
        out.append("For two parameters the sectional (Gaussian) curvature is $R/2$.\n\n")
    return "".join(out)


def _geodesics(geo: Geometry) -> str:
    out = ["\\section{Geodesic equations}\n"]
    for p, rhs in geo.geodesic_equations().items():
        out.append(_eq(f"\\ddot{{{_tex(p)}}}", rhs))
    return "".join(out)


def _divergences(geo: Geometry) -> str:
    if geo.exponential_family is None:
        return ""
    a, b = pair_symbols(geo)
    out = ["\\section{Divergences}\n", _eq(r"\mathrm{KL}(p_{1} \,\|\, p_{2})", kl(geo, a, b))]
    try:
        out.append(_eq(r"D_{\alpha}(p_{1} \,\|\, p_{2})", alpha_divergence(geo, a, b, geo.alpha_symbol)))
    except SymgeoError as exc:
        out.append(f"$\\alpha$-divergence: {_text(str(exc))}\n\n")
    return "".join(out)


def _bounds(geo: Geometry) -> str:
    out = ["\\section{Cram\\'er--Rao bound and Jeffreys prior}\n",
           "For $n$ observations, $\\operatorname{Cov}(\\hat\\xi) \\succeq g^{-1}/n$:\n"]
    out += _matrix_entries(r"\mathrm{CRB}", geo.cramer_rao())
    out.append(_eq(r"\pi_{J}(\xi) \propto \sqrt{\det g}", geo.jeffreys_prior))
    return "".join(out)


def _figures(figures) -> str:
    if not figures:
        return ""
    out = ["\\section{Figures}\n"]
    for path, caption in figures:
        out.append("\\begin{center}\\includegraphics[width=0.9\\linewidth]{" + str(path) + "}\\\\[2pt]\n"
                   + "\\small " + _text(caption) + "\\end{center}\n")
    return "".join(out)


def claims_report(entries) -> str:
    """A document collecting (script name, claim, computed, verdict) entries."""
    body = ["\\section*{The seed article's claims, checked}\n"]
    for name, claim, computed, verdict in entries:
        body.append(f"\\subsection*{{{_text(name)}}}\n\\textbf{{Claim.}} {_text(claim)}\n\n"
                    f"\\textbf{{Computed.}} {_text(computed)}\n\n\\textbf{{Verdict.}} {_text(verdict)}\n\n")
    return (PREAMBLE + "\\begin{document}\n" + "".join(body) + "\\end{document}\n")
