"""The currency universe: 8 majors and the 28 pairs between them, named by market convention."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

# Market-convention priority: the higher-priority currency is the base of the pair.
CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")


def _pair_name(a: str, b: str) -> str:
    return (a + b).lower()


PAIRS: tuple[str, ...] = tuple(_pair_name(a, b) for a, b in combinations(CURRENCIES, 2))


def split_pair(pair: str) -> tuple[str, str]:
    """Return (base, quote) currency codes of a pair name such as ``eurusd``."""
    check_pair(pair)
    return pair[:3].upper(), pair[3:].upper()


def check_pair(pair: str) -> str:
    """Return ``pair`` if it is one of the 28 known pairs, else raise ValueError naming it."""
    if pair not in PAIRS:
        raise ValueError(
            f"unknown pair {pair!r}: expected one of the 28 pairs of {' '.join(CURRENCIES)} "
            f"named base+quote in lowercase by market convention (e.g. 'eurusd', 'usdjpy')"
        )
    return pair


def listed_twice(pairs: Iterable[str]) -> list[str]:
    """The pairs that occur more than once in ``pairs``, sorted."""
    seen = list(pairs)
    return sorted({p for p in seen if seen.count(p) > 1})


def normalise_pair(name: str) -> str:
    """Map user spellings (``EUR/USD``, ``EUR_USD``, ``eurusd``) to the canonical pair name."""
    cleaned = "".join(ch for ch in name if ch.isalpha()).lower()
    return check_pair(cleaned)
