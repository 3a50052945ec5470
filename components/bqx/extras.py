"""Which ``pip install 'bqx-ml[...]'`` extra brings a missing package: the core installs only numpy, pandas
and pyarrow, each stage image the extras of its stage (pyproject.toml), so a command run without its
extra says which one to install instead of showing a traceback."""

from __future__ import annotations

EXTRA_OF = {
    "kfp": "kfp", "kfp_server_api": "kfp", "yaml": "kfp",
    "numba": "online", "llvmlite": "online", "scipy": "features",
    "catboost": "model",
    "matplotlib": "reports",
    "evidently": "drift",
    "boto3": "aws", "botocore": "aws",
    "docker": "ship",
    "orjson": "serve",
}


def install_hint(err: ModuleNotFoundError) -> str | None:
    """One line naming the extra that provides the missing module, or None if it is not one of ours."""
    top = (err.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return f"this needs {top!r}, which is in the {extra!r} extra: pip install 'bqx-ml[{extra}]' (or 'bqx-ml[all]')"
