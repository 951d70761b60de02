"""`symgeo report`: the LaTeX of a family's derivation, compiled to PDF for real when pdflatex is present."""
import shutil
import subprocess
import sys

import pytest

from symgeo import Geometry, catalog
from symgeo.report import _text, claims_report, family_report


@pytest.mark.parametrize("name", ["normal", "poisson", "cauchy"])
def test_report_has_every_section(name):
    tex = family_report(Geometry(catalog.get(name)))
    for section in ("Declaration", "Fisher metric", "Connections", "Curvature", "Geodesic equations",
                    "Cram\\'er--Rao"):
        assert section in tex
    assert ("Divergences" in tex) == (name != "cauchy")
    assert tex.count("\\begin{document}") == 1 and tex.rstrip().endswith("\\end{document}")


def test_text_is_escaped_for_latex():
    assert _text("50% of a_b & #1 {x}") == r"50\% of a\_b \& \#1 \{x\}"
    assert "$\\sigma$" in _text("σ") and "?" == _text("\u4e2d")


def _symgeo(*args, cwd):
    return subprocess.run([sys.executable, "-m", "symgeo", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, check=False)


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                    reason="pdflatex/pdftotext not installed (.ci/run installs texlive-latex-base, poppler-utils)")
def test_pdf_builds_and_contains_the_fisher_metric(tmp_path):
    run = _symgeo("report", "gamma", "-o", str(tmp_path / "gamma.tex"), "--pdf", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    text = subprocess.run(["pdftotext", str(tmp_path / "gamma.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Fisher metric" in text and "Geodesic equations" in text
    assert (tmp_path / "gamma-plane.png").stat().st_size > 10_000


def test_report_errors_are_one_line(tmp_path):
    run = _symgeo("report", "-o", str(tmp_path / "x.tex"), cwd=tmp_path)
    assert run.returncode == 2 and "give a FAMILY" in run.stderr
    run = _symgeo("report", "no_such_family", "-o", str(tmp_path / "x.tex"), cwd=tmp_path)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


def test_claims_document():
    tex = claims_report([("ratio", "d1/d2 = 100", "98.0 (σ = 100)", "approximately")])
    assert "\\subsection*{ratio}" in tex and "$\\sigma$" in tex


def test_the_claims_document_is_built_by_the_installed_package(tmp_path):
    """`symgeo report --claims` checks every claim in-process (no script paths of the source tree), from any
    folder; each claim appears with what was computed and its verdict."""
    pytest.importorskip("torch")
    from numeric.claims import CLAIMS
    run = _symgeo("report", "--claims", "-o", str(tmp_path / "claims.tex"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    tex = (tmp_path / "claims.tex").read_text()
    for name in CLAIMS:
        assert _text(name) in tex
    assert tex.count(r"\textbf{Verdict.}") == len(CLAIMS)
    assert "not checked" not in tex  # torch is installed: every claim was computed
