import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's cache."""
    os.environ["SYMGEO_CACHE_DIR"] = str(tmp_path_factory.mktemp("symgeo-cache"))
    yield


@pytest.fixture(scope="session")
def geometry():
    """Geometry of a catalog family, derived once per test session."""
    from symgeo import Geometry, catalog
    memo = {}

    def get(name, chart=None):
        key = (name, chart)
        if key not in memo:
            fam = catalog.get(name)
            memo[key] = Geometry(fam.in_chart(chart) if chart else fam, cache=False)
        return memo[key]
    return get


@pytest.fixture
def torch_float64():
    """torch's default dtype float64 for one test (restored after): references checked to 1e-10."""
    import torch
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
