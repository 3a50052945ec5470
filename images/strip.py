"""Strip the serve image to what `bqx serve` runs: the Python interpreter, its libraries and bqx's venv.

Run as root in the serve image's build (images/Dockerfile, target serve-build) after the online kernels
are compiled. It removes every program in the system bin directories except the Python interpreter the
venv points to (shells, coreutils, apt, dpkg, perl, su, mount), the package databases, and docs, so a
compromised server process finds no tools to work with. It runs with Python because /bin/sh is among
what it removes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
TREES = ("/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale", "/usr/share/perl5",
         "/usr/lib/x86_64-linux-gnu/perl-base", "/usr/lib/x86_64-linux-gnu/perl", "/usr/share/perl",
         "/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/cache/debconf", "/usr/lib/apt", "/etc/apt",
         "/usr/share/debconf", "/usr/lib/dpkg", "/usr/share/lintian", "/tmp/strip.py")
# In the venv: test suites and headers, and the parts of pyarrow the server never loads (it writes the
# prediction log as Parquet; S3 goes through boto3): Flight, the S3/GCS/Azure/HDFS file systems, ORC and
# the Substrait module (its library stays: libarrow_python links it).
VENV_GLOBS = ("lib/python3*/site-packages/*/tests", "lib/python3*/site-packages/*/*/tests",
              "lib/python3*/site-packages/pyarrow/include", "lib/python3*/site-packages/pyarrow/src",
              "lib/python3*/site-packages/pyarrow/*flight*", "lib/python3*/site-packages/pyarrow/_substrait*",
              "lib/python3*/site-packages/pyarrow/*_s3*", "lib/python3*/site-packages/pyarrow/*gcsfs*",
              "lib/python3*/site-packages/pyarrow/*azurefs*", "lib/python3*/site-packages/pyarrow/*hdfs*",
              "lib/python3*/site-packages/pyarrow/*orc*", "lib/python3*/site-packages/pyarrow/*cpp_tests*")


def interpreter_chain(start: str) -> set[str]:
    """The venv's python and every link on the way to the real interpreter binary (all kept)."""
    keep, path = set(), Path(start)
    while True:
        keep.add(str(path))
        if not path.is_symlink():
            return keep
        target = Path(os.readlink(path))
        path = target if target.is_absolute() else (path.parent / target)
        path = Path(os.path.normpath(path))


def main() -> int:
    keep = interpreter_chain("/opt/bqx/bin/python3")
    keep |= {str(Path(p).resolve()) for p in list(keep)}
    removed = 0
    seen: set[str] = set()
    for d in BIN_DIRS:
        real = os.path.realpath(d)  # /bin -> /usr/bin on merged-/usr systems
        if real in seen or not os.path.isdir(real):
            continue
        seen.add(real)
        for entry in os.scandir(real):
            path = os.path.join(real, entry.name)
            if path in keep:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed += 1
    for tree in TREES:
        if os.path.isdir(tree) and not os.path.islink(tree):
            shutil.rmtree(tree)
        elif os.path.lexists(tree):
            os.unlink(tree)
    for activate in Path("/opt/bqx/bin").glob("activate*"):  # the venv's shell activation scripts
        activate.unlink()
    for pattern in VENV_GLOBS:
        for path in Path("/opt/bqx").glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    print(f"strip: removed {removed} programs; kept {', '.join(sorted(keep))}", file=sys.stderr)
    return smoke_test()


def smoke_test() -> int:
    """What the server loads must still load: a failure here fails the image build, not a request."""
    import subprocess

    script = ("import tempfile, pandas as pd, pyarrow.parquet, numba, boto3\n"
              "import bqx.serving.server, bqx.serving.online, bqx.serving.trees\n"
              "pd.DataFrame({'x': [1.0]}).to_parquet(tempfile.mkdtemp() + '/p.parquet')\n")
    return subprocess.run(["/opt/bqx/bin/python3", "-c", script], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
