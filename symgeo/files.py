"""Reading files symgeo did not write: regular files only, never more than a size cap.

A FIFO, a device (a link to /dev/zero) or a folder is refused before a byte is read; a regular
file is read up to the cap plus one byte, so an oversized one is refused without being read whole.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeFileError(OSError):
    """Not a regular file, too large, or (with `private=True`) not the user's own."""


def read_bounded(path: Path | str, max_bytes: int, *, private: bool = False,
                 follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most `max_bytes`.

    `private`: also refuse a file owned by another user or writable by group or others (what the
    cache requires of its entries)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO with no writer does not wait
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"{path} is not a regular file")
        if private:
            check_private(info, path)
        if info.st_size > max_bytes:
            raise UnsafeFileError(f"{path} is larger than {max_bytes} bytes")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise UnsafeFileError(f"{path} is larger than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_private(info: os.stat_result, path) -> None:
    """Refuse what another user owns or could have written (group- or world-writable)."""
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UnsafeFileError(f"{path} belongs to another user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeFileError(f"{path} is writable by other users")
