"""On-disk cache of derived results, keyed by a family's declaration hash.

Trust model: the cache only loads what this user's symgeo wrote.
- Each entry is a header line, a signature line and a pickle. The header (JSON) names the entry's
  key, name and format; it is compared with what was asked for, so an entry copied into another
  family's folder is ignored. The signature is an HMAC-SHA256 of header and payload under a random
  per-user secret (`<cache>/secret`, mode 0600) that symgeo creates: a file it did not write has no
  valid signature and is never unpickled.
- The cache folder, the entry's folder and the entry must belong to the user and must not be
  writable by group or others; a folder that fails this is ignored (nothing is read or written).
- Entries are opened without following links, only as regular files, up to MAX_ENTRY_BYTES.
- Writes go to a temporary file renamed into place; a failed write removes it.
Pickle is kept (rather than SymPy's srepr text read back through the safe parser) because the entries
hold failures and exceptions as well as expressions, and because loading the multivariate normal's
results as srepr text is measured many times slower (see the README); the signature, not the format,
is what keeps a planted file from executing.
`SYMGEO_CACHE_DIR` moves the cache, `SYMGEO_CACHE=0` turns it off. Keys include `family.SCHEMA`,
bumped when the form of results changes.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import secrets
import stat
import tempfile
import warnings
from pathlib import Path

from .files import UnsafeFileError, check_private, read_bounded

FORMAT = "symgeo-cache-2"
MAX_ENTRY_BYTES = 512 * 2 ** 20
SECRET_BYTES = 32


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
        self._secret: bytes | None = None

    def _path(self, key: str, name: str) -> Path:
        return self.folder / key / f"{name}.pkl"

    def get(self, key: str, name: str):
        """The stored value, or None when absent, corrupt, foreign or not this entry."""
        path = self._path(key, name)
        try:
            secret = self._key()
            _private_folder(path.parent)
            header, signature, payload = read_bounded(path, MAX_ENTRY_BYTES, private=True,
                                                      follow_links=False).split(b"\n", 2)
            if not hmac.compare_digest(signature, _sign(secret, header, payload)):
                return None
            if json.loads(header) != _header(key, name):
                return None
            return pickle.loads(payload)
        except Exception:  # noqa: BLE001 (missing, truncated, foreign, unreadable: recompute)
            return None

    def put(self, key: str, name: str, value) -> None:
        path = self._path(key, name)
        tmp = None
        try:
            secret = self._key()
            path.parent.mkdir(mode=0o700, exist_ok=True)
            _private_folder(path.parent)
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            header = json.dumps(_header(key, name), sort_keys=True).encode()
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(header + b"\n" + _sign(secret, header, payload) + b"\n" + payload)
            os.replace(tmp, path)
            tmp = None
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            pass  # a read-only, full or foreign cache only costs speed
        finally:
            if tmp is not None:
                _remove(tmp)

    def _key(self) -> bytes:
        """This user's signing secret, created on first use; UnsafeFileError if the folder is foreign."""
        if self._secret is None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                _private_folder(self.folder)
            except UnsafeFileError as exc:
                _warn_once(f"symgeo: the cache is not used ({exc})")
                raise
            path = self.folder / "secret"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(SECRET_BYTES))
            secret = read_bounded(path, SECRET_BYTES, private=True, follow_links=False)
            if len(secret) != SECRET_BYTES:
                raise UnsafeFileError(f"{path}: not a symgeo cache secret")
            self._secret = secret
        return self._secret


def _header(key: str, name: str) -> dict:
    return {"format": FORMAT, "key": key, "name": name}


def _sign(secret: bytes, header: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, header + b"\n" + payload, hashlib.sha256).hexdigest().encode()


def _private_folder(folder: Path) -> None:
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeFileError(f"{folder} is not a folder")
    check_private(info, folder)


_warned: set = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
