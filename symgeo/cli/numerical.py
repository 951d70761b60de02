"""The numeric commands of `symgeo` (distance, geodesic, verify, report, figures): the one module of symgeo
that imports `numeric`, and only when one of these commands runs."""
from __future__ import annotations

import json
import sys

import numpy as np

from numeric.compiled import CompiledFamily
from numeric.geodesic import Geodesics, distance

from ..errors import InvalidArgumentError, NumericalError
from ..geometry import Geometry
from ..load import load_family, parse_point


def _compiled(args) -> CompiledFamily:
    family = load_family(args.family, args.chart)
    return CompiledFamily(Geometry(family, timeout=args.timeout, cache=not args.no_cache))


def _points(args, compiled):
    fam = compiled.family
    return [np.array([float(point[p]) for p in fam.params]) for point in
            (parse_point(args.from_, fam), parse_point(args.to, fam))]


def cmd_distance(args) -> int:
    compiled = _compiled(args)
    a, b = _points(args, compiled)
    result = distance(compiled, a, b, method=args.method)
    if args.json:
        print(json.dumps({"family": compiled.family.name, "chart": compiled.family.chart,
                          "from": a.tolist(), "to": b.tolist(), "distance": result.value,
                          "method": result.method, "residual": result.residual,
                          "iterations": result.iterations}, ensure_ascii=False))
        return 0
    print(
        f"Fisher–Rao distance ({result.method}"
        + (
            f", endpoint residual {result.residual:.1e}, {result.iterations} Newton steps"
            if result.iterations
            else ""
        )
        + "):"
    )
    print(repr(result.value))
    return 0


def cmd_geodesic(args) -> int:
    compiled = _compiled(args)
    a, b = _points(args, compiled)
    geo = Geodesics(compiled)
    shot = geo.log(a, b)
    times = np.linspace(0.0, 1.0, args.points)
    path = geo.path(a, shot.velocity, times)
    length = float(np.sqrt(shot.velocity @ compiled.fisher(*a) @ shot.velocity))
    if not (np.isfinite(length) and np.all(np.isfinite(path))):
        raise NumericalError(f"the geodesic from {a.tolist()} to {b.tolist()} is not finite along the way "
                             f"(length {length})")
    names = [str(p) for p in compiled.params]
    if args.plot:
        _plot(compiled, geo.path(a, shot.velocity, np.linspace(0.0, 1.0, 401)), names, args.plot)
    if args.json:
        print(json.dumps({"family": compiled.family.name, "params": names, "t": times.tolist(),
                          "path": path.tolist(), "initial_velocity": shot.velocity.tolist(),
                          "length": length, "residual": shot.residual}))
        return 0
    print("t\t" + "\t".join(names))
    for t, row in zip(times, path):
        print(f"{t:.4f}\t" + "\t".join(f"{v:.10g}" for v in row))
    if args.plot:
        print(f"plot written to {args.plot}")
    print(f"length = {length!r}")
    return 0


def _plot(compiled, path, names, filename) -> None:
    from numeric.figures import subplots
    fig, ax = subplots(figsize=(5.5, 4.5), dpi=120)
    if path.shape[1] >= 2:
        ax.plot(path[:, 0], path[:, 1], color="C0", lw=2, label="Fisher–Rao geodesic")
        ax.plot([path[0, 0], path[-1, 0]], [path[0, 1], path[-1, 1]], "--", color="0.6", lw=1,
                label="straight line in these coordinates")
        ax.scatter(path[[0, -1], 0], path[[0, -1], 1], color="C3", zorder=3)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        ax.plot(np.linspace(0, 1, len(path)), path[:, 0], color="C0", lw=2)
        ax.set_xlabel("t")
        ax.set_ylabel(names[0])
    ax.set_title(f"{compiled.family.name}: geodesic in the ({', '.join(names[:2])}) chart")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(filename)


def cmd_verify(args) -> int:
    from numeric.verify import verify
    report = verify(_compiled(args), samples=args.samples, seed=args.seed)
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) if args.json else report.table())
    return 0 if report.passed else 1


def cmd_figures(args) -> int:
    from numeric.figures import FIGURES, make_figures
    if args.list:
        for name, (_, description) in FIGURES.items():
            print(f"{name:<20} {description}")
        return 0
    for path in make_figures(args.out, args.only, args.seed):
        print(path)
    return 0


def cmd_report(args) -> int:
    """LaTeX (and with --pdf a PDF) of a family's derivation, or of the seed article's claims."""
    import shutil
    import subprocess
    from pathlib import Path

    from ..report import claims_report, family_report
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.claims:
        from numeric.claims import check_claims

        claims = check_claims(
            progress=lambda name: print(f"symgeo: checking {name}", file=sys.stderr, flush=True)
        )
        text = claims_report([(c.name, c.claim, c.computed, c.verdict) for c in claims])
    elif not args.family:
        raise InvalidArgumentError("report: give a FAMILY (catalog name or spec file), or --claims")
    else:
        compiled = _compiled(args)
        figures = []
        if not args.no_figures and compiled.n in (1, 2):
            from numeric.figures import family_plane
            picture = family_plane(compiled, out.with_name(out.stem + "-plane.png"))
            figures.append(
                (picture.name, "Fisher metric over the parameter plane, and geodesics (generated code).")
            )
        text = family_report(compiled.geometry, figures)
    out.write_text(text)
    print(out)
    if args.pdf:
        if shutil.which("pdflatex") is None:
            raise InvalidArgumentError("--pdf needs pdflatex (Debian: apt-get install texlive-latex-base)")
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", out.name],
                             cwd=out.parent, capture_output=True, text=True, timeout=300, check=False)
        if run.returncode != 0:
            raise InvalidArgumentError(f"pdflatex failed; see {out.with_suffix('.log')}")
        print(out.with_suffix(".pdf"))
    return 0
