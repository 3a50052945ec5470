"""How ``bqx serve`` is configured: command-line flags, else ``BQX_SERVE_*`` environment variables
(the way SageMaker passes settings to a container), else defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
    host: str = "0.0.0.0"  # noqa: S104 (a container must listen on all interfaces)
    port: int = 8080
    budget_bytes: int = 0  # 0: BUDGET_SHARE of the container's memory
    signal_threshold: float | None = None  # None: the model's eval_cost_bps / 100
    log_dir: str = ""  # prediction log directory ("" = no log)
    models: str = ""  # preload every model.tar.gz / model directory under this path
    access_log: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeConfig:
        e = os.environ if env is None else env
        threshold = e.get("BQX_SERVE_SIGNAL_THRESHOLD", "")
        return cls(
            host=e.get("BQX_SERVE_HOST", cls.host),
            port=int(e.get("SAGEMAKER_BIND_TO_PORT", e.get("BQX_SERVE_PORT", cls.port))),
            budget_bytes=int(float(e.get("BQX_SERVE_MEMORY_MB", "0")) * 1024 * 1024),
            signal_threshold=float(threshold) if threshold else None,
            log_dir=e.get("BQX_SERVE_LOG_DIR", ""),
            models=e.get("BQX_SERVE_MODELS", ""),
            access_log=e.get("BQX_SERVE_ACCESS_LOG", "") == "1",
        )

    def effective_budget(self) -> int:
        return self.budget_bytes or int(BUDGET_SHARE * container_memory_bytes())
