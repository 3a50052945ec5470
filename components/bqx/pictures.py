"""Static pictures for the HTML artifacts: matplotlib off-screen, figures inlined as PNG data URIs, so
a page needs no script and no network."""

from __future__ import annotations

import base64
import io
from types import ModuleType


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg (file-only) backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_uri(fig: object, dpi: int = 80) -> str:
    """The figure as a ``data:image/png;base64,...`` URI; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # type: ignore[attr-defined]
    pyplot().close(fig)  # type: ignore[arg-type]
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
