"""How ``bqx serve`` is configured: command-line flags, else ``BQX_SERVE_*`` environment variables
(the way SageMaker passes settings to a container), else defaults.

Secure by default: the server binds 127.0.0.1 (the serve image sets ``BQX_SERVE_HOST=0.0.0.0``, which
SageMaker needs), ``POST /models`` loads only from inside ``model_root`` or from ``s3://`` (no root: local
loads are refused), and with ``auth_token`` set the management routes need ``Authorization: Bearer``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SINGLE_MODEL_DIR = "/opt/ml/model"  # where SageMaker puts the model of a single-model endpoint
BUDGET_SHARE = 0.75  # default model memory budget: this share of the container's memory


def container_memory_bytes() -> int:
    """The cgroup limit when there is one (a container), else the machine's memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # the serve image sets 0.0.0.0: a container must listen on all interfaces
    port: int = 8080
    budget_bytes: int = 0  # 0: BUDGET_SHARE of the container's memory
    signal_threshold: float | None = None  # None: the model's eval_cost_bps / 100
    log_dir: str = ""  # prediction log directory ("" = no log)
    models: str = ""  # preload every model.tar.gz / model directory under this path
    access_log: bool = False
    model_root: str = ""  # POST /models loads local paths inside this directory only ("" = s3:// only)
    auth_token: str = field(default="", repr=False)  # bearer token for the /models management routes
    # the production variant this container serves in an A/B endpoint (deploy sets BQX_VARIANT on each
    # variant's model): answers and the prediction log name it, so live metrics can be split by variant
    variant: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeConfig:
        e = os.environ if env is None else env
        return cls(
            host=e.get("BQX_SERVE_HOST", cls.host),
            port=_number(e, ("SAGEMAKER_BIND_TO_PORT", "BQX_SERVE_PORT"), cls.port, int),
            budget_bytes=int(_number(e, ("BQX_SERVE_MEMORY_MB",), 0.0, float) * 1024 * 1024),
            signal_threshold=_number(e, ("BQX_SERVE_SIGNAL_THRESHOLD",), None, float),
            log_dir=e.get("BQX_SERVE_LOG_DIR", ""),
            models=e.get("BQX_SERVE_MODELS", ""),
            access_log=e.get("BQX_SERVE_ACCESS_LOG", "") == "1",
            model_root=e.get("BQX_SERVE_MODEL_ROOT", ""),
            auth_token=e.get("BQX_SERVE_AUTH_TOKEN", ""),
            variant=e.get("BQX_VARIANT", ""),
        )

    def effective_budget(self) -> int:
        return self.budget_bytes or int(BUDGET_SHARE * container_memory_bytes())

    def load_root(self) -> str:
        """Where POST /models may load local paths from: ``model_root``, else the preload directory."""
        return self.model_root or self.models


def _number(env: Mapping[str, str], names: tuple[str, ...], default: Any, kind: type) -> Any:  # noqa: ANN401
    """The first of ``names`` that is set, as ``kind``; a value that is not a number names its variable."""
    for name in names:
        if env.get(name, ""):
            try:
                return kind(env[name])
            except ValueError:
                raise ValueError(f"{name}={env[name]!r} is not a{'n integer' if kind is int else ' number'}") from None
    return default


MIN_TOKEN_CHARS = 16


def read_token(path: str) -> str:
    """A bearer token from a file (a mounted secret): its first line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"--auth-token-file {path}: {exc.strerror}") from None
    return text.strip().split("\n", 1)[0].strip()


def check(config: ServeConfig) -> ServeConfig:
    """One-line errors for settings the server cannot start with."""
    if config.auth_token and len(config.auth_token) < MIN_TOKEN_CHARS:
        raise ValueError(f"the bearer token (BQX_SERVE_AUTH_TOKEN or --auth-token-file) must have at least "
                         f"{MIN_TOKEN_CHARS} characters")
    if config.model_root and not Path(config.model_root).is_dir():
        raise ValueError(f"--model-root {config.model_root}: not a directory")
    if not 0 <= config.port <= 65535:
        raise ValueError(f"--port {config.port}: not a TCP port")
    return config


def writable_kernel_cache() -> str | None:
    """numba writes into its cache directory even to load compiled kernels from it, so on a read-only root
    file system (a hardened pod, or `docker run --read-only`) the image's precompiled kernels are copied
    once to a writable temp directory, before numba is imported; returns the directory now in use."""
    import shutil
    import sys
    import tempfile

    src = os.environ.get("NUMBA_CACHE_DIR", "")
    if not src or "numba" in sys.modules or os.access(src, os.W_OK) or not os.path.isdir(src):
        return src or None
    dst = Path(tempfile.gettempdir()) / "bqx-numba-cache"
    shutil.copytree(src, dst, dirs_exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(dst)
    return str(dst)
