"""The command line's contract: exit codes, one-line errors, JSON keys."""
import json
import math
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


def test_kl_command_values_and_errors():
    out = run("kl", "normal", "--from", "mu=0,sigma=1", "--to", "mu=1,sigma=1")
    assert out.returncode == 0 and float(out.stdout.strip().splitlines()[-1]) == 0.5
    out = run("kl", "normal", "--from", "mu=0,sigma=100", "--to", "mu=1,sigma=100")
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(5e-5, rel=1e-12)
    data = json.loads(run("kl", "exponential", "--from", "lam=0.2", "--to", "lam=1", "--json").stdout)
    assert data["kl"] == pytest.approx(2.3905620875658996, rel=1e-14)
    for args, message in [(("kl", "normal", "--from", "mu=0,sigma=-1", "--to", "mu=1,sigma=1"), "outside its domain"),
                          (("kl", "normal", "--from", "mu=0", "--to", "mu=1,sigma=1"), "missing")]:
        bad = run(*args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    cauchy = run("kl", "cauchy", "--from", "x0=0,gamma=1", "--to", "x0=1,gamma=1")  # declared, said so
    assert cauchy.returncode == 0 and "declared closed form" in cauchy.stdout
    assert float(cauchy.stdout.strip().splitlines()[-1]) == pytest.approx(math.log(5 / 4), rel=1e-12)


def test_skewness_and_alpha_in_json():
    data = json.loads(run("derive", "normal", "--format", "json", "--alpha", "alpha").stdout)
    names = {p: sp.Symbol(p) for p in data["params"]}
    sigma = names["sigma"]
    assert sp.sympify(data["skewness"][1][1][1], locals=names) == 8 / sigma**3
    alpha = sp.Symbol("alpha")
    gam = sp.sympify(data["alpha_christoffel"][1][0][0], locals={**names, "alpha": alpha})
    assert sp.simplify(gam - (1 - alpha) / (2 * sigma)) == 0
    assert data["exponential_family"]["sufficient_statistics"] == ["x", "x**2"]
