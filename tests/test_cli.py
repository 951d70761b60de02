"""The command line: contract of DESIGN.md (exit codes, one-line errors, JSON keys)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"family", "chart", "params", "fisher", "inverse_fisher", "christoffel", "skewness", "scalar_curvature",
        "geodesic_equations", "cramer_rao", "jeffreys_prior", "exponential_family"}


def run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "symgeo", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_list_shows_catalog_and_kind():
    out = run("list")
    assert out.returncode == 0
    assert "normal" in out.stdout and "exponential" in out.stdout and "general" in out.stdout
    rows = json.loads(run("list", "--json").stdout)
    assert {r["name"] for r in rows} >= {"normal", "gamma", "cauchy", "dirichlet", "multivariate_normal"}


@pytest.mark.parametrize("family,chart", [("normal", None), ("gamma", "rate"), ("categorical:k=3", None),
                                          ("cauchy", None)])
def test_derive_json_contract(family, chart):
    args = ["derive", family, "--format", "json"] + (["--chart", chart] if chart else [])
    out = run(*args)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert KEYS <= set(data)
    names = {p: sp.Symbol(p) for p in data["params"]}
    n = len(data["params"])
    g = sp.Matrix([[sp.sympify(e, locals=names) for e in row] for row in data["fisher"]])
    ginv = sp.Matrix([[sp.sympify(e, locals=names) for e in row] for row in data["inverse_fisher"]])
    assert (g * ginv).applyfunc(lambda e: sp.simplify(sp.expand_func(e))) == sp.eye(n)
    assert len(data["christoffel"]) == n and len(data["christoffel"][0][0]) == n
    sp.sympify(data["scalar_curvature"], locals=names)
    assert set(data["geodesic_equations"]) == set(data["params"])
    velocities = {f"v_{p}" for p in data["params"]}
    local = {**names, **{v: sp.Symbol(v) for v in velocities}}
    for rhs in data["geodesic_equations"].values():
        assert {str(s) for s in sp.sympify(rhs, locals=local).free_symbols} <= set(data["params"]) | velocities
    assert "n_obs" in str(data["cramer_rao"])


def test_derive_normal_text_values():
    out = run("derive", "normal")
    assert out.returncode == 0
    assert "g[mu,mu] = sigma**(-2)" in out.stdout and "scalar curvature R = -1" in out.stdout


def test_derive_latex_and_spec_file():
    out = run("derive", "derivations/maxwell.toml", "--format", "latex")
    assert out.returncode == 0 and r"\frac{6}{a^{2}}" in out.stdout


@pytest.mark.parametrize("args,message", [
    (("derive", "nosuch"), "unknown family"),
    (("derive", "normal", "--chart", "nope"), "no chart"),
    (("derive", "categorical:k=1"), "integer"),
    (("derive", "missing.toml"), "cannot read"),
    (("derive", "normal", "--format", "yaml"), "invalid choice"),
    (("derive",), "required"),
    (("frobnicate",), "invalid choice"),
    (("derive", "normal", "--alpha", "abc"), "--alpha"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0]


def test_malicious_spec_file_exits_2(tmp_path):
    spec = tmp_path / "evil.toml"
    spec.write_text('name = "evil"\nvariable = "x"\nsupport = "reals"\nlog_density = "9**9**9**9"\n'
                    '[params]\nm = "real"\n')
    out = run("derive", str(spec))
    assert out.returncode == 2 and "too large" in out.stderr


def test_help_for_every_subcommand():
    for sub in ("list", "derive"):
        out = run(sub, "--help")
        assert out.returncode == 0 and "usage" in out.stdout
