"""Stale numba caches of the hand-written kernels, dropped when the feature sources change.

numba keys a kernel's on-disk cache on the kernel's own source file only. A kernel that calls a
primitive in another module (``latest``, ``incremental``) would keep loading machine code built from
the primitive's old body after an edit there. The generated kernels avoid this by naming the
primitives' hash in their source (:func:`bqx.features.spec._primitives_digest`); for the hand-written
ones, a stamp beside numba's cache files holds the hash of every module of this package, and when it
differs the package's cache files are deleted (they recompile on first use). A file lock keeps
parallel processes from deleting what another has just written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

STAMP = "bqx-features.sha256"


def sources_digest(package_dir: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(package_dir.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def drop_stale(package_dir: Path, cache_dir: Path | None = None) -> list[str]:
    """Delete numba's cache files in ``cache_dir`` (default: the package's ``__pycache__``) unless its stamp
    matches the package's sources; returns the names deleted. A folder that cannot be written is left alone
    (numba then keeps its caches elsewhere)."""
    import fcntl

    cache = cache_dir or package_dir / "__pycache__"
    digest = sources_digest(package_dir)
    stamp = cache / STAMP
    try:
        if stamp.read_text() == digest:
            return []
    except OSError:
        pass
    dropped: list[str] = []
    try:
        cache.mkdir(exist_ok=True)
        with open(cache / f"{STAMP}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if stamp.read_text() == digest:  # another process got here first
                    return []
            except OSError:
                pass
            for f in sorted(cache.iterdir()):
                if f.suffix in (".nbi", ".nbc"):
                    f.unlink(missing_ok=True)
                    dropped.append(f.name)
            tmp = stamp.with_suffix(".tmp")
            tmp.write_text(digest)
            tmp.replace(stamp)
    except OSError:
        return dropped
    return dropped
