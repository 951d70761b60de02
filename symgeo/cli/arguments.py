"""The command line's argument types and shared argument groups: every value is checked where it is read,
so a bad one is one line and exit 2 before any work."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..expectation import DEFAULT_TIMEOUT

DEFAULT_MEMORY_GIB = 8.0
DEFAULT_TIME_LIMIT = 900.0


def divergence_arguments(p) -> None:
    p.add_argument("family", help="a catalog family or a .toml spec file")
    p.add_argument("--from", dest="from_", required=True, help="first point, e.g. mu=0,sigma=1")
    p.add_argument("--to", required=True, help="second point, e.g. mu=1,sigma=1")
    p.add_argument("--chart", help="read the points in this chart")
    p.add_argument("--json", action="store_true")
    common(p)


def two_points(p) -> None:
    p.add_argument("family", help="catalog name or a .toml spec file")
    p.add_argument("--from", dest="from_", required=True, help="first point, e.g. mu=0,sigma=1")
    p.add_argument("--to", required=True, help="second point, e.g. mu=1,sigma=1")
    p.add_argument("--chart", help="read the points in this chart")
    common(p)


def count(option: str, low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{option} must be an integer from {low} to {high}, not {text!r}"
            )
        return value
    return parse


def positive(option: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (0 < value < float("inf")):
            raise argparse.ArgumentTypeError(f"{option} must be a positive number, not {text!r}")
        return value
    return parse


def output_file(option: str):
    """An argparse type: a file path that can be written (checked before any computation)."""
    def parse(text: str) -> str:
        _writable_place(Path(text), option, folder=False)
        return text
    return parse


def output_folder(option: str):
    def parse(text: str) -> str:
        _writable_place(Path(text), option, folder=True)
        return text
    return parse


def _writable_place(path: Path, option: str, folder: bool) -> None:
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "not a folder"
        raise argparse.ArgumentTypeError(f"{option} {path}: {kind}")
    existing = path if folder and path.exists() else path.parent  # an existing file is overwritten in place
    while not existing.exists():  # missing folders are created; the nearest existing one must take them
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK) or \
            (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{option} {path}: cannot write there")


def common(p, bounded: bool = True) -> None:
    p.add_argument("--timeout", type=positive("--timeout"), default=DEFAULT_TIMEOUT,
                   help=f"seconds per symbolic integral or sum (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--no-cache", action="store_true", help="ignore the on-disk cache")
    if bounded:
        limits(p)


def limits(p, seconds: float = DEFAULT_TIME_LIMIT) -> None:
    p.add_argument("--time-limit", type=positive("--time-limit"), default=seconds,
                   help=f"CPU seconds for the whole command (default {seconds:g})")
    p.add_argument("--memory", type=positive("--memory"), default=DEFAULT_MEMORY_GIB,
                   help=f"GiB of memory for the command (default {DEFAULT_MEMORY_GIB:g})")
