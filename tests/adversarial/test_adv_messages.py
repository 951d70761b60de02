"""Class 5: valid points are accepted, bad input is refused in one line naming its cause (exit 2),
and a genuine bug still shows as one (exit 1), never as a user error. Ends with a fuzz of the
command line: whatever the arguments, symgeo exits 0, 1, 2 or 3 and never prints a NaN with 0."""
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err and err.startswith("symgeo")


def test_tiny_and_near_one_values_are_kept_exactly(cli):
    code, out, err = cli("kl", "normal", "--from", "mu=0,sigma=1e-300", "--to", "mu=0,sigma=1", "--json")
    assert code == 0, err
    # KL(N(0, s²) ‖ N(0, 1)) = (s² − 1)/2 − log s
    assert json.loads(out)["kl"] == pytest.approx(-0.5 - math.log(1e-300) + 0.5e-600, rel=1e-12)
    code, out, err = cli("kl", "bernoulli", "--from", "p=0.999999999999999999", "--to", "p=0.5", "--json")
    assert code == 0, err
    q = 1e-18  # 1 − p, kept apart: in floating point p would round to 1
    expected = (1 - q) * (math.log(2) + math.log1p(-q)) + q * math.log(2 * q)
    assert json.loads(out)["kl"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("args, cause", [
    (["derive", "normal", "--alpha", "1/0"], "division by zero"),
    (["derive", "normal", "--alpha", "one"], "--alpha"),
    (["derive", "normal", "--timeout", "nan"], "--timeout"),
    (["derive", "normal", "--timeout", "-1"], "--timeout"),
    (["derive", "normal", "--budget", "inf"], "--budget"),
    (["kl", "normal", "--from", "mu=0,mu=5,sigma=1", "--to", "mu=0,sigma=1"], "given twice"),
    (["kl", "normal", "--from", "mu=0", "--to", "mu=0,sigma=1"], "missing"),
    (["kl", "normal", "--from", "mu=0,sigma=1,tau=2", "--to", "mu=0,sigma=1"], "unknown parameter"),
    (["kl", "normal", "--from", "mu=0,sigma=-1", "--to", "mu=0,sigma=1"], "outside its domain"),
    (["kl", "normal", "--chart", "expectation", "--from", "eta1=2,eta2=1", "--to", "eta1=0,eta2=1"], "violates"),
    (["geodesic", "normal", "--from", "mu=0,sigma=1", "--to", "mu=1,sigma=1", "--points", "1"], "--points"),
    (["derive", "no_such_family"], "unknown family"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, cause):
    code, out, err = cli(*args)
    assert code == 2 and cause in err and _one_line(err), err


def test_output_paths_are_checked_before_the_work(cli, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [["report", "normal", "-o", str(tmp_path)],                       # a folder, not a file
             ["figures", "--out", str(a_file)],                               # a file, not a folder
             ["geodesic", "normal", "--from", "mu=0,sigma=1", "--to", "mu=1,sigma=2", "--plot", str(tmp_path)],
             ["report", "normal", "-o", str(a_file / "x.tex")]]               # under a file
    for args in cases:
        code, out, err = cli(*args, seconds=30)
        assert code == 2 and _one_line(err) and out == "", (args, err)


def test_normalize_on_a_density_with_no_finite_integral_says_so(cli, tmp_path):
    spec = tmp_path / "power.toml"
    spec.write_text('name = "power"\nvariable = "x"\nsupport = "positive"\ndensity = "x**a"\n'
                    'normalize = true\n[params]\na = "positive"\n')
    code, _, err = cli("derive", str(spec))
    assert code == 2 and "no finite integral" in err and _one_line(err)


def test_a_bug_is_not_passed_off_as_bad_input(cli, monkeypatch):
    import symgeo.cli as cli_module

    def broken(args):
        raise ValueError("an internal inconsistency")
    monkeypatch.setattr(cli_module, "cmd_list", broken)
    monkeypatch.setattr(cli_module, "build_parser", _parser_with(cli_module, broken))
    code, _, err = cli("list")
    assert code == 1 and "internal error" in err


def _parser_with(module, fn):
    original = module.build_parser

    def build():
        parser = original()
        parser._subparsers._group_actions[0].choices["list"].set_defaults(func=fn)
        return parser
    return build


# -- fuzz ------------------------------------------------------------------------------------------
FAMILIES = {"normal": ("mu", "sigma"), "poisson": ("lam",), "exponential": ("lam",), "bernoulli": ("p",),
            "gamma": ("k", "theta")}
NUMBERS = st.one_of(st.sampled_from(["0", "1", "-1", "1/2", "1e-300", "1e300", "1e999", "nan", "inf", "-0",
                                     "0.999999999999999999", "1/0", "2/3", "", "1e-9999", "x"]),
                    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr))


@st.composite
def commands(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    names = list(FAMILIES[family])
    if draw(st.booleans()):
        names.append(draw(st.sampled_from(names + ["zz"])))

    def point():
        return ",".join(f"{n}={draw(NUMBERS)}" for n in names)
    command = draw(st.sampled_from(["kl", "distance"]))
    return [command, family, "--from", point(), "--to", point(), "--json"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(args=commands())
def test_fuzzed_command_lines_end_cleanly(cli, args):
    code, out, err = cli(*args, seconds=60)
    assert code in (0, 2), (args, code, err)
    if code == 0:
        value = json.loads(out)["kl" if args[0] == "kl" else "distance"]
        assert math.isfinite(value) and value >= -1e-12, (args, out)
    else:
        assert _one_line(err), (args, err)
