"""On-disk cache of derived results, keyed by a family's declaration hash.

Each entry is a SHA-256 digest line followed by a pickle of SymPy objects. An entry whose digest
does not match, or that fails to load, is ignored and recomputed, never trusted. The cache folder
is as trusted as the user's own files (like __pycache__): `SYMGEO_CACHE_DIR` moves it,
`SYMGEO_CACHE=0` turns it off. Keys include `family.SCHEMA`, bumped when the form of results changes.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path


def default_dir() -> Path:
    env = os.environ.get("SYMGEO_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symgeo"


def enabled() -> bool:
    return os.environ.get("SYMGEO_CACHE", "1") not in ("0", "false", "no")


class DiskCache:
    def __init__(self, folder: Path | str | None = None):
        self.folder = Path(folder) if folder is not None else default_dir()

    def _path(self, key: str, name: str) -> Path:
        return self.folder / key / f"{name}.pkl"

    def get(self, key: str, name: str):
        """The stored value, or None when absent or corrupt."""
        path = self._path(key, name)
        try:
            digest, _, payload = path.read_bytes().partition(b"\n")
            if hashlib.sha256(payload).hexdigest().encode() != digest:
                return None
            return pickle.loads(payload)
        except Exception:  # missing, truncated, unreadable: recompute
            return None

    def put(self, key: str, name: str, value) -> None:
        path = self._path(key, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk only costs speed
