"""One-line progress messages from stages; ``bqx run --local`` echoes them to the terminal."""

from __future__ import annotations

import sys

MARK = "[bqx] "


def say(stage: str, subject: str, text: str) -> None:
    print(f"{MARK}{stage:<7} {subject:<7} {text}", file=sys.stdout, flush=True)
