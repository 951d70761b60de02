"""The `symgeo` command line. Bad input exits 2 with one line on stderr, never a traceback.

The only code of symgeo that imports `numeric`: the numeric commands (distance, geodesic, verify, report,
figures) live in `symgeo.cli.numerical`, imported when one of them runs."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..divergence import KINDS
from ..errors import SymgeoError
from ..render import FORMATS, derivation
from .arguments import (
    DEFAULT_MEMORY_GIB,
    common,
    count,
    divergence_arguments,
    limits,
    output_file,
    output_folder,
    positive,
    two_points,
)
from .symbolic import EXIT_PARTIAL, cmd_check, cmd_derive, cmd_divergence, cmd_entropy, cmd_kl, cmd_list

EXIT_BAD_INPUT = 2
MAX_SAMPLES = 10_000_000  # Monte Carlo draws for verify: a few GB at most
DEFAULT_BUDGET = 300.0
__all__ = ["build_parser", "main", "entry", "derivation", "EXIT_BAD_INPUT", "EXIT_PARTIAL"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"symgeo: {message}\n")


def _numeric(name: str):
    """A numeric subcommand, imported only when it runs (symgeo never imports numeric at import time)."""
    def run(args) -> int:
        from . import numerical
        return getattr(numerical, name)(args)
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symgeo", description="Symbolic information geometry of parametric families.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)

    p = sub.add_parser("list", help="the catalog of families")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("derive", help="derive a family's geometry")
    p.add_argument("family", help="catalog name (normal, categorical:k=4, ...) or a .toml spec file")
    p.add_argument("--chart", help="derive in this named chart (see symgeo list)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument(
        "--alpha", help="also give the α-connection symbols for this α (1, -1, 1/2, or 'alpha' for symbolic)"
    )
    p.add_argument("--budget", type=positive("--budget"), default=DEFAULT_BUDGET,
                   help=f"seconds for the whole derivation (default {DEFAULT_BUDGET:g}); what finished "
                        f"within it is printed, the rest named, exit {EXIT_PARTIAL}")
    p.add_argument("--memory", type=positive("--memory"), default=DEFAULT_MEMORY_GIB,
                   help=f"GiB of memory for the derivation (default {DEFAULT_MEMORY_GIB:g})")
    common(p, bounded=False)
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser(
        "kl", help="KL divergence between two members (closed form where known, else quadrature)"
    )
    divergence_arguments(p)
    p.set_defaults(func=cmd_kl)

    p = sub.add_parser("divergence", help="a divergence between two members (closed form where known, "
                                          "else quadrature with its error)")
    divergence_arguments(p)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--order", help="Rényi's order a (> 0, ≠ 1) or Amari's α (≠ ±1), e.g. 1/2")
    p.set_defaults(func=cmd_divergence)

    p = sub.add_parser("entropy", help="the entropy −E[log p]: formula and value at a point")
    p.add_argument("family", help="a catalog family or a .toml spec file")
    p.add_argument("--at", required=True, help="the point, e.g. mu=0,sigma=1")
    p.add_argument("--chart", help="read the point in this chart")
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_entropy)

    p = sub.add_parser(
        "check", help="check your own function against symgeo's exact quantity (exit 0 agrees, 1 disagrees)"
    )
    p.add_argument(
        "function",
        help="MODULE:FUNCTION or FILE.py:FUNCTION; it takes the family's parameters in "
        "order (see symgeo.testing.assert_matches)",
    )
    p.add_argument("--family", required=True, help="a catalog family or a .toml spec file")
    p.add_argument(
        "--quantity",
        required=True,
        help="fisher, inverse_fisher, christoffel, skewness, log_density, "
        "score, entropy, kl, renyi, ..., fisher_vector_product, "
        "natural_gradient, natural_params, ...",
    )
    p.add_argument("--chart", help="the function takes this chart's parameters")
    p.add_argument("--order", help="Rényi's order or Amari's α, for renyi and alpha")
    p.add_argument("--rtol", type=positive("--rtol"), default=1e-8)
    p.add_argument("--atol", type=float, default=0.0)
    p.add_argument("-n", dest="n", type=count("-n", 1, 10_000), default=20, help="points (pairs) to try")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "distance", help="Fisher–Rao distance (closed form where known, else the geodesic BVP)"
    )
    two_points(p)
    p.add_argument("--method", choices=("auto", "closed", "quadrature", "shooting"), default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_numeric("cmd_distance"))

    p = sub.add_parser("geodesic", help="the geodesic between two members, as a table (and a plot)")
    two_points(p)
    p.add_argument("--points", type=count("--points", 2, 100_000), default=21,
                   help="number of points along the path (default 21)")
    p.add_argument(
        "--plot",
        metavar="FILE",
        type=output_file("--plot"),
        help="draw the path in the parameter plane (PNG, PDF, SVG)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_numeric("cmd_geodesic"))

    p = sub.add_parser("verify", help="check the derived formulas against independent numerics; "
                                      "exits 1 if a check fails")
    p.add_argument("family", help="catalog name or a .toml spec file")
    p.add_argument("--chart", help="verify in this named chart")
    p.add_argument(
        "--samples",
        type=count("--samples", 1000, MAX_SAMPLES),
        default=100_000,
        help="Monte Carlo sample size (default 100000)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    common(p)
    p.set_defaults(func=_numeric("cmd_verify"))

    p = sub.add_parser("report", help="a LaTeX (and PDF) document of a family's derivation, or of the claims")
    p.add_argument("family", nargs="?", help="catalog name or a .toml spec file")
    p.add_argument(
        "-o", "--output", required=True, type=output_file("--output"), help="the .tex file to write"
    )
    p.add_argument("--chart", help="derive in this named chart")
    p.add_argument("--pdf", action="store_true", help="also compile it with pdflatex")
    p.add_argument("--claims", action="store_true", help="the seed article's claims instead of a family")
    p.add_argument("--no-figures", action="store_true", help="leave the family's figure out")
    common(p)
    p.set_defaults(func=_numeric("cmd_report"))

    p = sub.add_parser("figures", help="regenerate the project's figures (seeded PNGs)")
    p.add_argument(
        "--out", default="figures", type=output_folder("--out"), help="output folder (default figures/)"
    )
    p.add_argument("--only", action="append", metavar="NAME", help="only this figure (repeatable)")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.add_argument("--seed", type=int, default=0)
    limits(p, seconds=3600.0)
    p.set_defaults(func=_numeric("cmd_figures"))
    return parser


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
    from ..limits import bounded as process_limits
    args = build_parser().parse_args(argv)
    try:
        with process_limits(*_bounds(args)) if bounded else contextlib.nullcontext():
            return args.func(args)
    except MemoryError:
        print(
            f"symgeo: out of memory (the limit is {getattr(args, 'memory', '?')} GiB: --memory)",
            file=sys.stderr,
        )
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
