"""On-disk cache (corrupt entries recomputed) and the import-time contract of the symbolic core."""
import subprocess
import sys


from symgeo import Geometry, catalog
from symgeo.cache import DiskCache


def test_second_derivation_comes_from_disk(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path)
    first = Geometry(catalog.get("gamma"), cache=cache)
    R = first.scalar_curvature
    _ = first.christoffel()
    import symgeo.geometry as geo_mod
    monkeypatch.setattr(geo_mod, "fisher_exponential", lambda ef: (_ for _ in ()).throw(AssertionError("recomputed")))
    second = Geometry(catalog.get("gamma"), cache=cache)
    assert second.fisher == first.fisher and second.scalar_curvature == R
    assert second.christoffel() == first.christoffel()


def test_corrupt_entries_are_recomputed_not_trusted(tmp_path):
    cache = DiskCache(tmp_path)
    g = Geometry(catalog.get("normal"), cache=cache)
    expected = g.scalar_curvature
    files = list(tmp_path.rglob("scalar_curvature.pkl"))
    assert files
    raw = files[0].read_bytes()
    files[0].write_bytes(raw[:-3] + b"xyz")  # damaged payload: digest no longer matches
    assert Geometry(catalog.get("normal"), cache=cache).scalar_curvature == expected
    files[0].write_bytes(b"garbage")
    assert Geometry(catalog.get("normal"), cache=cache).scalar_curvature == expected
    # a well-formed entry with a wrong value but a forged-free digest cannot occur; a truncated one:
    files[0].write_bytes(raw[: len(raw) // 2])
    assert Geometry(catalog.get("normal"), cache=cache).scalar_curvature == expected


def test_declaration_changes_change_the_key():
    a = catalog.get("binomial:n=5").key
    b = catalog.get("binomial:n=6").key
    assert a != b and catalog.get("binomial:n=5").key == a
    assert catalog.get("normal").in_chart("variance").key != catalog.get("normal").key


def test_import_symgeo_is_light():
    code = ("import sys, time; t = time.time(); import symgeo; dt = time.time() - t; "
            "bad = [m for m in ('torch', 'matplotlib', 'numeric', 'scipy') if m in sys.modules]; "
            "print(dt, bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    dt, bad = out.stdout.split(" ", 1)
    assert bad.strip() == "[]", bad
    assert float(dt) < 5.0  # generous: only catches accidental heavy imports; measured ~0.3 s


def test_geometry_renders_latex():
    assert r"\sigma" in Geometry(catalog.get("normal"), cache=False)._repr_latex_()


def test_symgeo_testing_imports_torch_only_for_its_torch_helpers():
    code = ("import sys; import symgeo.testing as t; before = 'torch' in sys.modules; "
            "t.assert_fvp_matches; print(before, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr
