"""Class 3: a cache that cannot be turned against its user. Entries are tied to their key and signed;
foreign, shared-writable, planted, copied or damaged entries are never loaded."""
import os
import pickle
import stat
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symgeo import Geometry, catalog
from symgeo.cache import DiskCache
from symgeo.errors import IntegrationError, NonRegularFamilyError
from symgeo.spec import family_from_dict


class _Bomb:
    """Unpickling this writes a marker file: proof that planted code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _entries(folder, name):
    return sorted(folder.rglob(f"{name}.pkl"))


def test_entries_copied_into_another_familys_folder_are_ignored(tmp_path):
    cache = DiskCache(tmp_path)
    beta, inverse_gamma = (Geometry(catalog.get(n), cache=cache) for n in ("beta", "inverse_gamma"))
    expected = Geometry(catalog.get("inverse_gamma"), cache=False).fisher
    _ = beta.fisher, inverse_gamma.fisher
    target = tmp_path / inverse_gamma._disk_key
    for entry in (tmp_path / beta._disk_key).iterdir():
        (target / entry.name).write_bytes(entry.read_bytes())
    assert Geometry(catalog.get("inverse_gamma"), cache=cache).fisher == expected


@pytest.mark.parametrize("layout", ["old", "forged", "bare"])
def test_a_planted_pickle_never_runs(tmp_path, layout):
    cache = DiskCache(tmp_path)
    geo = Geometry(catalog.get("poisson"), cache=cache)
    expected = geo.fisher
    entry = _entries(tmp_path, "fisher")[0]
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Bomb(marker))
    header = entry.read_bytes().split(b"\n", 1)[0]  # a genuine header, a signature that is not
    planted = {"old": b"0" * 64 + b"\n" + payload, "forged": header + b"\n" + b"f" * 64 + b"\n" + payload,
               "bare": payload}[layout]
    entry.write_bytes(planted)
    assert Geometry(catalog.get("poisson"), cache=cache).fisher == expected
    assert not marker.exists()


def test_a_shared_writable_cache_folder_is_not_used(tmp_path):
    folder = tmp_path / "shared"
    cache = DiskCache(folder)
    geo = Geometry(catalog.get("poisson"), cache=cache)
    _ = geo.fisher
    assert _entries(folder, "fisher")
    folder.chmod(0o777)
    marker = tmp_path / "ran"
    _entries(folder, "fisher")[0].write_bytes(pickle.dumps(_Bomb(marker)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = DiskCache(folder)
        assert fresh.get(geo._disk_key, "fisher") is None
        fresh.put(geo._disk_key, "new_entry", 1)
    assert not marker.exists() and not _entries(folder, "new_entry")
    assert any("not used" in str(w.message) for w in caught)


def test_a_group_writable_entry_is_ignored(tmp_path):
    cache = DiskCache(tmp_path)
    geo = Geometry(catalog.get("poisson"), cache=cache)
    _ = geo.fisher
    entry = _entries(tmp_path, "fisher")[0]
    entry.chmod(0o664)
    assert DiskCache(tmp_path).get(geo._disk_key, "fisher") is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing owners needs root")
def test_an_entry_owned_by_another_user_is_ignored(tmp_path):
    cache = DiskCache(tmp_path)
    geo = Geometry(catalog.get("poisson"), cache=cache)
    _ = geo.fisher
    entry = _entries(tmp_path, "fisher")[0]
    os.chown(entry, 4242, 4242)
    assert DiskCache(tmp_path).get(geo._disk_key, "fisher") is None


def test_links_and_oversized_entries_are_not_followed_or_read(tmp_path, monkeypatch, within):
    import symgeo.cache as cache_module
    cache = DiskCache(tmp_path)
    geo = Geometry(catalog.get("poisson"), cache=cache)
    _ = geo.fisher
    entry = _entries(tmp_path, "fisher")[0]
    data = entry.read_bytes()
    entry.unlink()
    elsewhere = tmp_path / "elsewhere.pkl"
    elsewhere.write_bytes(data)
    elsewhere.chmod(0o600)
    entry.symlink_to(elsewhere)
    with within(10):
        assert DiskCache(tmp_path).get(geo._disk_key, "fisher") is None
    entry.unlink()
    entry.write_bytes(data)
    entry.chmod(0o600)
    monkeypatch.setattr(cache_module, "MAX_ENTRY_BYTES", len(data) - 1)
    assert DiskCache(tmp_path).get(geo._disk_key, "fisher") is None


NON_REGULAR = {"name": "shifted_exponential", "variable": "x", "support": {"interval": ["m", "oo"]},
               "density": "exp(-(x - m))", "params": {"m": "real"}}


def test_an_unchecked_result_is_not_served_to_a_checked_run(tmp_path):
    cache = DiskCache(tmp_path)
    family = family_from_dict(NON_REGULAR)
    _ = Geometry(family, cache=cache, check=False).fisher  # computed on request, without the checks
    with pytest.raises(NonRegularFamilyError):
        _ = Geometry(family, cache=cache).fisher


def test_a_failure_under_a_short_bound_is_retried_under_a_longer_one(tmp_path):
    cache = DiskCache(tmp_path)
    family = catalog.get("poisson")
    calls = []

    def attempt():
        calls.append(1)
        raise IntegrationError("no closed form within the bound")
    with pytest.raises(IntegrationError):
        Geometry(family, cache=cache, timeout=1).memo("probe", attempt, remember=(IntegrationError,))
    with pytest.raises(IntegrationError):  # the same bound: remembered, not recomputed
        Geometry(family, cache=cache, timeout=1).memo("probe", attempt, remember=(IntegrationError,))
    assert len(calls) == 1
    assert Geometry(family, cache=cache, timeout=30).memo("probe", lambda: 42, remember=(IntegrationError,)) == 42
    assert Geometry(family, cache=cache, timeout=1).memo("probe", attempt, remember=(IntegrationError,)) == 42


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path)

    def refuse(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", refuse)
    cache.put("key", "name", {"a": 1})
    assert not list(tmp_path.rglob("*.tmp")) and cache.get("key", "name") is None


def test_the_secret_is_private(tmp_path):
    DiskCache(tmp_path).put("key", "name", 1)
    mode = stat.S_IMODE(os.stat(tmp_path / "secret").st_mode)
    assert mode == 0o600


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10 ** 6), byte=st.integers(0, 255), cut=st.booleans())
def test_a_damaged_entry_is_recomputed_never_misread(tmp_path_factory, position, byte, cut):
    folder = tmp_path_factory.mktemp("damage")
    cache = DiskCache(folder)
    expected = Geometry(catalog.get("gamma"), cache=cache).fisher
    entry = _entries(folder, "fisher")[0]
    data = bytearray(entry.read_bytes())
    position %= len(data)
    if cut:
        data = data[:position]
    else:
        data[position] = byte
    entry.write_bytes(bytes(data))
    assert Geometry(catalog.get("gamma"), cache=cache).fisher == expected
