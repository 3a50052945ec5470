"""Features declared once, as expressions: the batch columns, the online kernel, its state layout
and the warm-up are all derived from the same declaration.

A table is a list of ``(name, expression)`` pairs over named input series::

    x = series("idx")
    table = {f"sma{w}_dist": (x - wmean(x, w)) / wmean(x, w) * 100 for w in (5, 15)}

Expressions are built from paired primitives (each has a one-row form with carried state in
:mod:`bqx.features.incremental`): arithmetic, ``lag``/``diff``, trailing-window sums, means,
variances, extremes, rows since the extreme, mean absolute deviation, quantiles and histogram
entropy over a sorted window, exact central moments, recursive averages (``ema``, ``wilder``,
``ewm``), rows since an event, and a session's first value or running extreme (``group_first``,
``group_max``), and a value or its rank among several picked by a parameter index (``pick``,
``rank``). Equal sub-expressions are one node, so the rolling maximum shared by
stochastic %K and Williams %R is computed once.

:func:`compile_table` turns a table into one numba kernel (the generated source is cached on disk
under its hash, and numba caches the machine code beside it): ``rows`` computes rows t0..t1 in one
loop, ``step`` runs it for row t, ``batch`` over every row a chunk at a time, so the batch table and
the serving engine agree by construction. State offsets and sizes are assigned here, never written
by hand; slot 0 counts the rows stepped, where every ring writes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from bqx.features.incremental import HMM_SLOTS, WEXT_HEAD, WPOLY_SLOTS, WSORT_HEAD, WSUM_SLOTS, WVAR_SLOTS

BATCH_CHUNK = 1024  # rows the batch kernel writes row-wise (as online) before moving them into columns
EWM_SETTLE = 6.0  # rows x 1/alpha for a recursive average to forget its start (weight e^-6 left)


@dataclass(frozen=True, eq=True)
class Expr:
    """A node of a feature expression; equal nodes (same op, arguments, parameters) are one node."""

    op: str
    args: tuple[Expr, ...] = ()
    params: tuple = ()
    _hash: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.params)))

    def __hash__(self) -> int:
        return self._hash

    def __add__(self, other: Operand) -> Expr:
        return Expr("add", (self, _e(other)))

    def __radd__(self, other: Operand) -> Expr:
        return Expr("add", (_e(other), self))

    def __sub__(self, other: Operand) -> Expr:
        return Expr("sub", (self, _e(other)))

    def __rsub__(self, other: Operand) -> Expr:
        return Expr("sub", (_e(other), self))

    def __mul__(self, other: Operand) -> Expr:
        return Expr("mul", (self, _e(other)))

    def __rmul__(self, other: Operand) -> Expr:
        return Expr("mul", (_e(other), self))

    def __truediv__(self, other: Operand) -> Expr:
        """Plain division (inf or NaN where the divisor is 0, as numpy); :func:`sdiv` for NaN instead."""
        return Expr("div", (self, _e(other)))

    def __rtruediv__(self, other: Operand) -> Expr:
        return Expr("div", (_e(other), self))

    def __neg__(self) -> Expr:
        return Expr("neg", (self,))

    def __abs__(self) -> Expr:
        return Expr("abs", (self,))


Operand = Expr | float | int
Table = dict[str, Expr]


def _e(v: Operand) -> Expr:
    return v if isinstance(v, Expr) else Expr("const", params=(float(v),))


def series(name: str) -> Expr:
    """An input series of the pair (a :class:`bqx.features.registry.PairInputs` field)."""
    return Expr("in", params=(name,))


def param(name: str, shape: tuple[int, ...] = ()) -> Expr:
    """A value fitted from data and passed to the kernel at run time (float64; an array of ``shape``),
    e.g. an HMM's means; :func:`item` reads one element. The table's :func:`compile_table` call names
    the parameters in the order the kernel takes them."""
    return Expr("param", params=(name, tuple(shape)))


def item(x: Expr, *index: int) -> Expr:
    """One element of a parameter array."""
    return Expr("item", (x,), tuple(int(i) for i in index))


def lag(x: Expr, k: int) -> Expr:
    """x k rows back (NaN for the first k rows)."""
    return x if k == 0 else Expr("lag", (x,), (int(k),))


def diff(x: Expr, k: int = 1) -> Expr:
    return x - lag(x, k)


def sdiv(a: Operand, b: Operand) -> Expr:
    """a / b, NaN where b is 0 or the quotient is not finite."""
    return Expr("sdiv", (_e(a), _e(b)))


def sqrt(x: Expr) -> Expr:
    return Expr("sqrt", (x,))


def log(x: Expr) -> Expr:
    return Expr("log", (x,))


def log1p(x: Expr) -> Expr:
    """ln(1 + x), exact for small x."""
    return Expr("log1p", (x,))


def finite(x: Expr) -> Expr:
    """1 where x is a finite number, 0 where it is NaN or infinite (never NaN)."""
    return Expr("finite", (x,))


def keep_nan(x: Expr, like: Expr) -> Expr:
    """x where ``like`` is a number, NaN where it is NaN."""
    return select(eq(like, like), x, x)


def sign(x: Expr) -> Expr:
    """-1, 0 or 1 (NaN kept)."""
    return Expr("sign", (x,))


def clip(x: Expr, lo: float, hi: float) -> Expr:
    """x limited to [lo, hi] (NaN kept)."""
    return minimum(maximum(x, lo), hi)


def maximum(a: Operand, b: Operand) -> Expr:
    return Expr("max", (_e(a), _e(b)))


def minimum(a: Operand, b: Operand) -> Expr:
    return Expr("min", (_e(a), _e(b)))


def eq(a: Operand, b: Operand) -> Expr:
    """1 where a == b, 0 where not, NaN where either is NaN."""
    return Expr("eq", (_e(a), _e(b)))


def gt(a: Operand, b: Operand) -> Expr:
    """1 where a > b, 0 where not, NaN where either is NaN."""
    return Expr("gt", (_e(a), _e(b)))


def both(a: Expr, b: Expr) -> Expr:
    """1 where both conditions hold (NaN where either is NaN)."""
    return Expr("both", (a, b))


def select(cond: Expr, a: Operand, b: Operand) -> Expr:
    """a where cond holds, b where not, NaN where cond is NaN."""
    return Expr("select", (cond, _e(a), _e(b)))


def positive(x: Expr) -> Expr:
    """max(x, 0), NaN kept."""
    return maximum(x, 0.0)


def wsum(x: Expr, w: int) -> Expr:
    return Expr("wsum", (x,), (int(w),))


def wmean(x: Expr, w: int) -> Expr:
    return wsum(x, w) / float(w)


def wvar(x: Expr, w: int, ddof: int = 1) -> Expr:
    return Expr("wvar", (x,), (int(w), int(ddof)))


def wstd(x: Expr, w: int, ddof: int = 1) -> Expr:
    return sqrt(wvar(x, w, ddof))


def wcov(x: Expr, y: Expr, w: int) -> Expr:
    """Population covariance over the last w rows, from window means (for centred series: returns,
    changes; levels go through :func:`wvar`)."""
    return wmean(x * y, w) - wmean(x, w) * wmean(y, w)


def wcorr(x: Expr, y: Expr, w: int) -> Expr:
    """Pearson correlation over the last w rows, clipped to [-1, 1]; NaN where either side is flat."""
    return clip(sdiv(wcov(x, y, w), sqrt(wvar(x, w, 0) * wvar(y, w, 0))), -1.0, 1.0)


def wmax(x: Expr, w: int) -> Expr:
    return Expr("wext", (x,), (int(w), True, False))


def wmin(x: Expr, w: int) -> Expr:
    return Expr("wext", (x,), (int(w), False, False))


def rows_since_max(x: Expr, w: int) -> Expr:
    """Rows since the highest of the last w values (the most recent on ties)."""
    return Expr("wext", (x,), (int(w), True, True))


def rows_since_min(x: Expr, w: int) -> Expr:
    return Expr("wext", (x,), (int(w), False, True))


def wmad(x: Expr, w: int) -> Expr:
    """Mean absolute deviation of the last w values from their own mean."""
    return Expr("wmad", (x, wmean(x, w)), (int(w),))


def wpoly(x: Expr, w: int) -> tuple[Expr, Expr, Expr, Expr, Expr]:
    """Moments of a quadratic fit over the last w values (:func:`bqx.features.incremental.wpoly`):
    sum y, sum u y, sum u^2 y, sum y^2 of the values less a centre, and the centre."""
    node = Expr("wpoly", (x,), (int(w),))
    return tuple(Expr("item", (node,), (k,)) for k in range(5))  # type: ignore[return-value]


def wsorted(x: Expr, w: int) -> Expr:
    """The last w values kept in order (one node per series and window, shared by its readers); its
    value is 1.0 when the window is full and finite, else NaN."""
    return Expr("wsort", (x,), (int(w),))


def wquantile(x: Expr, w: int, q: float) -> Expr:
    """The q-quantile of the last w values, linear between order statistics (numpy's ``percentile``)."""
    return Expr("wquant", (wsorted(x, w),), (float(q),))


def wentropy(x: Expr, w: int, bins: int) -> Expr:
    """Entropy of a ``bins``-bin histogram over the last w values' range, in [0, 1]; NaN when flat."""
    return Expr("wentropy", (wsorted(x, w),), (int(bins),))


def wmoments(x: Expr, w: int) -> tuple[Expr, Expr, Expr, Expr]:
    """Central moments m2, m3, m4 of the last w values (over w) and their lag-1 autocorrelation,
    exact in O(w) per row (:func:`bqx.features.incremental.wmoments`)."""
    node = Expr("wmoments", (x,), (int(w),))
    return tuple(Expr("item", (node,), (k,)) for k in range(4))  # type: ignore[return-value]


def hmm_filter(x: Expr, start: Expr, init: Expr, trans: Expr, mu: Expr, var: Expr
               ) -> tuple[Expr, Expr, Expr, Expr, Expr, Expr]:
    """The forward filter of a 3-state Gaussian HMM over x from row ``start`` on (parameters, see
    :func:`bqx.features.incremental.hmm3`): the filtered probabilities p0, p1, p2, the log predictive
    density of x and the predictive mean and variance of x given the rows before."""
    node = Expr("hmm", (x, start, init, trans, mu, var))
    return tuple(Expr("item", (node,), (k,)) for k in range(6))  # type: ignore[return-value]


def cusum(z: Expr, k: float, h: float) -> tuple[Expr, Expr, Expr]:
    """Two-sided CUSUM of z (reference k, threshold h): positive and negative sums and the alarm (1 on a
    row that crosses h, after which both sums restart at 0), from the first finite z."""
    node = Expr("cusum", (z,), (float(k), float(h)))
    return tuple(Expr("item", (node,), (j,)) for j in range(3))  # type: ignore[return-value]


def pick(index: Expr, values: Iterable[Operand]) -> Expr:
    """values[index] row by row, for an index given as a parameter (e.g. the pair's base currency among
    the 8 strengths); NaN for an index out of range."""
    return Expr("pick", (index, *map(_e, values)))


def rank(index: Expr, values: Iterable[Operand]) -> Expr:
    """The rank of values[index] among the finite values, 1 = the largest, NaN where it is not finite;
    values within 1e-9 (relative) of each other rank in order of position."""
    return Expr("rank", (index, *map(_e, values)))


def since(event: Expr) -> Expr:
    """Rows since ``event`` (a 0/1 condition) last held: 0 on an event row, NaN before the first."""
    return Expr("since", (event,))


def group_first(x: Expr, key: Expr) -> Expr:
    """x on the first row of the current run of equal ``key`` values (e.g. a session's opening price)."""
    return Expr("gfirst", (x, key))


def group_max(x: Expr, key: Expr) -> Expr:
    """The highest x so far within the current run of equal ``key`` values (e.g. the day's high)."""
    return Expr("gext", (x, key), (True,))


def group_min(x: Expr, key: Expr) -> Expr:
    return Expr("gext", (x, key), (False,))


def ewm(x: Expr, alpha: float) -> Expr:
    """Recursive average y = alpha x + (1 - alpha) y(t-1), started at the first finite x."""
    return Expr("ewm", (x,), (float(alpha),))


def ema(x: Expr, span: int) -> Expr:
    return ewm(x, 2.0 / (span + 1))


def wilder(x: Expr, period: int) -> Expr:
    return ewm(x, 1.0 / period)


# ------------------------------------------------------------------------------------------------
# compilation


def _lookback(node: Expr) -> int:
    """Rows before t this node's own operation reads of its argument (0 for row-wise ones)."""
    if node.op == "lag":
        return node.params[0]
    if node.op in ("wsum", "wvar", "wext", "wmad", "wpoly", "wsort", "wmoments"):
        return node.params[0] - 1
    if node.op == "ewm":
        return math.ceil(EWM_SETTLE / node.params[0])
    return 0


def _ring_size(node: Expr) -> int:
    """Values of its argument's history this node needs in a ring."""
    if node.op == "lag":
        return node.params[0] + 1
    if node.op in ("wsum", "wvar", "wpoly", "wsort"):
        return node.params[0] + 1  # the value leaving the window too
    if node.op in ("wext", "wmad", "wmoments"):
        return node.params[0]
    return 0


_STATE = {"wsum": WSUM_SLOTS, "wvar": WVAR_SLOTS, "wpoly": WPOLY_SLOTS, "ewm": 2, "since": 1,
          "gfirst": 2, "gext": 2, "hmm": HMM_SLOTS, "cusum": 2}
_STARTS_NAN = ("since", "gfirst", "gext")  # state that starts at NaN: "nothing seen yet"


def _state_size(node: Expr) -> int:
    """Slots of the node's own state (besides its argument's ring)."""
    if node.op == "wsort":
        return WSORT_HEAD + node.params[0]
    if node.op == "wext":  # the previous block's w + 1 suffix extremes and their rows
        return WEXT_HEAD + 2 * (node.params[0] + 1)
    return _STATE.get(node.op, 0)


def _order(outputs: Iterable[Expr]) -> list[Expr]:
    """Every node the outputs need, arguments before their users."""
    seen: dict[Expr, None] = {}

    def visit(node: Expr) -> None:
        stack = [(node, False)]
        while stack:
            n, done = stack.pop()
            if n in seen:
                continue
            if done:
                seen[n] = None
                continue
            stack.append((n, True))
            stack.extend((a, False) for a in reversed(n.args) if a not in seen)

    for out in outputs:
        visit(out)
    return list(seen)


@dataclass(frozen=True)
class Layout:
    """Where each node lives: its local variable, its ring and its own state slots."""

    nodes: list[Expr]
    var: dict[Expr, str]
    ring: dict[Expr, tuple[int, int]]  # node -> (offset, capacity) of its history ring
    slots: dict[Expr, int]  # node -> offset of its own state
    size: int
    inputs: tuple[str, ...]
    params: dict[str, tuple[int, ...]]  # parameter -> shape, in node order
    # the row body in parts, each its own compiled function (one part: one function, no value slots);
    # ``kept``: the state slot of each value a later part or the output reads
    parts: list[list[Expr]] = field(default_factory=list)
    kept: dict[Expr, int] = field(default_factory=dict)


# Nodes per compiled part. A value that crosses parts goes through memory, so fewer parts run faster:
# at 400 every table but parabolic is one function, extract 0.4 s faster per pair-year than at 48, and
# `bqx kernels` compiles all 21 kernels in the same time (bench/README.md, session 21).
PART_NODES = 400
_TUPLE_OPS = ("wpoly", "wmoments", "hmm", "cusum")  # their value is a tuple, read by ``item`` nodes


def _cheap(n: Expr, ring: Mapping[Expr, tuple[int, int]]) -> bool:
    """A node each part re-reads instead of keeping (an input, a parameter, a constant without a ring)."""
    return n.op in ("in", "param", "const") and n not in ring


def _parts(nodes: list[Expr], ring: Mapping[Expr, tuple[int, int]], outputs: list[Expr], offset: int
           ) -> tuple[list[list[Expr]], dict[Expr, int], int]:
    """Cut the row body into parts of about PART_NODES nodes, in order, a tuple-valued node and its
    items never apart; the values read across parts (and the outputs) get state slots from ``offset``."""
    items: dict[Expr, list[Expr]] = {}
    for n in nodes:
        if n.op == "item" and n.args[0].op in _TUPLE_OPS:
            items.setdefault(n.args[0], []).append(n)
    units = [[n, *items.get(n, [])] for n in nodes
             if not _cheap(n, ring) and not (n.op == "item" and n.args[0].op in _TUPLE_OPS)]
    parts: list[list[Expr]] = []
    for unit in units:
        if not parts or len(parts[-1]) + len(unit) > PART_NODES:
            parts.append([])
        parts[-1].extend(unit)
    if len(parts) <= 1:
        return parts, {}, offset
    part_of = {n: i for i, part in enumerate(parts) for n in part}
    kept: dict[Expr, int] = {}
    needed = [a for i, part in enumerate(parts) for n in part for a in n.args if part_of.get(a, i) < i]
    for n in [*needed, *(o for o in outputs if o in part_of)]:
        if n not in kept:
            kept[n] = offset
            offset += 1
    return parts, kept, offset


def layout(outputs: Iterable[Expr]) -> Layout:
    nodes = _order(outputs)
    ring_size: dict[Expr, int] = {}
    for n in nodes:
        need = _ring_size(n)
        if need:
            ring_size[n.args[0]] = max(ring_size.get(n.args[0], 0), need)
    offset = 1  # slot 0: the rows stepped, the row index every ring is written at
    ring: dict[Expr, tuple[int, int]] = {}
    slots: dict[Expr, int] = {}
    for n in nodes:
        if n in ring_size:
            cap = 1 << (ring_size[n] - 1).bit_length()  # a power of two: row p sits at p & (cap - 1)
            ring[n] = (offset, cap)
            offset += 2 * cap  # the values twice over (incremental.window)
        if _state_size(n):
            slots[n] = offset
            offset += _state_size(n)
    inputs = tuple(dict.fromkeys(n.params[0] for n in nodes if n.op == "in"))
    params = {n.params[0]: n.params[1] for n in nodes if n.op == "param"}
    var = {n: f"v{i}" for i, n in enumerate(nodes)}
    parts, kept, offset = _parts(nodes, ring, [_e(o) for o in outputs], offset)
    return Layout(nodes, var, ring, slots, offset, inputs, params, parts, kept)


_BINARY = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}", "sdiv": "sdiv({0}, {1})",
           "max": "nmax({0}, {1})", "min": "nmin({0}, {1})", "gt": "gt({0}, {1})", "both": "both({0}, {1})",
           "eq": "eq({0}, {1})"}


def _line(n: Expr, lay: Layout) -> str:
    a = [lay.var[x] for x in n.args]
    if n.op == "in":
        return f"s_{n.params[0]}[t]"
    if n.op == "param":
        return f"p_{n.params[0]}"
    if n.op == "const":
        return repr(n.params[0])
    if n.op in _BINARY:
        return _BINARY[n.op].format(*a)
    if n.op == "neg":
        return f"-{a[0]}"
    if n.op == "abs":
        return f"abs({a[0]})"
    if n.op in ("sqrt", "log", "log1p", "sign"):
        return f"np.{n.op}({a[0]})"
    if n.op == "finite":
        return f"(1.0 if np.isfinite({a[0]}) else 0.0)"
    if n.op == "item":
        return f"{a[0]}[{', '.join(map(str, n.params))}]"
    if n.op == "select":
        return f"select({a[0]}, {a[1]}, {a[2]})"
    if n.op in ("pick", "rank"):
        return f"{'pick' if n.op == 'pick' else 'rank_of'}({a[0]}, ({', '.join(a[1:])},))"
    if n.op == "ewm":
        return f"ewm(state, {lay.slots[n]}, {a[0]}, {n.params[0]!r})"
    if n.op == "since":
        return f"since(state, {lay.slots[n]}, {a[0]})"
    if n.op == "gfirst":
        return f"group_first(state, {lay.slots[n]}, {a[0]}, {a[1]})"
    if n.op == "gext":
        return f"group_ext(state, {lay.slots[n]}, {a[0]}, {a[1]}, {n.params[0]})"
    if n.op == "hmm":
        return f"hmm3(state, {lay.slots[n]}, t, {', '.join(a)})"
    if n.op == "cusum":
        return f"cusum(state, {lay.slots[n]}, {a[0]}, {n.params[0]!r}, {n.params[1]!r})"
    if n.op == "wquant":
        return f"wquant(state, {lay.slots[n.args[0]]}, {n.args[0].params[0]}, {n.params[0]!r}, {a[0]})"
    if n.op == "wentropy":
        return f"wentropy(state, {lay.slots[n.args[0]]}, {n.args[0].params[0]}, {n.params[0]}, {a[0]})"
    r, cap = lay.ring[n.args[0]]
    if n.op == "lag":
        return f"back(state, {r}, {cap}, p, {n.params[0]})"
    if n.op == "wsum":
        return f"wsum(state, {lay.slots[n]}, {r}, {cap}, p, {n.params[0]}, {a[0]})"
    if n.op == "wvar":
        return f"wvar(state, {lay.slots[n]}, {r}, {cap}, p, {n.params[0]}, {n.params[1]}, {a[0]})"
    if n.op == "wext":
        w, highest, age = n.params
        return f"wext(state, {lay.slots[n]}, {r}, {cap}, p, {w}, {highest}, {age}, {a[0]})"
    if n.op == "wmad":
        return f"wmad(state, {r}, {cap}, p, {n.params[0]}, {a[1]})"
    if n.op == "wpoly":
        return f"wpoly(state, {lay.slots[n]}, {r}, {cap}, p, {n.params[0]}, {a[0]})"
    if n.op == "wsort":
        return f"wsort(state, {lay.slots[n]}, {r}, {cap}, p, {n.params[0]}, {a[0]})"
    if n.op == "wmoments":
        return f"wmoments(state, {r}, {cap}, p, {n.params[0]})"
    raise ValueError(f"unknown feature operation {n.op!r}")


def _primitives_digest() -> str:
    """Hash of the primitive modules' source: numba's cache only watches the generated file, so a
    change in a primitive must change the generated file's name and content."""
    from bqx.features import incremental, latest

    h = hashlib.sha256()
    for mod in (incremental, latest):
        h.update(Path(mod.__file__ or "").read_bytes())
    return h.hexdigest()[:16]


def source(names: list[str], outputs: list[Expr], lay: Layout, params: tuple[str, ...] = ()) -> str:
    """The kernel module's Python source: ``init``, ``step`` and ``batch`` around one row body; the
    arguments are the input series, then the parameters in ``params`` order."""
    def lines(nodes: Iterable[Expr]) -> list[str]:
        out = []
        for n in nodes:
            out.append(f"{lay.var[n]} = {_line(n, lay)}")
            if n in lay.ring:
                r, cap = lay.ring[n]
                out.append(f"push(state, {r}, {cap}, p, {lay.var[n]})")
        return out

    args = ", ".join([f"s_{s}" for s in lay.inputs] + [f"p_{p}" for p in params])
    k = len(outputs)
    parts = ""
    if len(lay.parts) <= 1:
        body = lines(lay.nodes)
        step_out = [f"out[o + {j}] = {lay.var[e]}" for j, e in enumerate(outputs)]
    else:  # each part its own function: values crossing parts go through their state slots
        body = []
        for i, part in enumerate(lay.parts):
            mine = set(part)
            used = list(dict.fromkeys(a for n in part for a in n.args if a not in mine))
            head = lines(a for a in used if a not in lay.kept) + [f"{lay.var[a]} = state[{lay.kept[a]}]"
                                                                   for a in used if a in lay.kept]
            tail = [f"state[{lay.kept[n]}] = {lay.var[n]}" for n in part if n in lay.kept]
            parts += ("@njit(cache=True, error_model='numpy')\n"
                      f"def part{i}(t, p, {args}, state):\n    " + "\n    ".join(head + lines(part) + tail) + "\n\n\n")
            body.append(f"part{i}(t, p, {args}, state)")
        step_out = [f"out[o + {j}] = " + (f"state[{lay.kept[e]}]" if e in lay.kept else _line(e, lay))
                    for j, e in enumerate(outputs)]
    rings = tuple((r, r + 2 * cap) for r, cap in lay.ring.values())
    # init resets whatever the vector held (a stale sorted-window count would write outside it)
    inits = ["    state[:] = 0.0"]
    inits += [f"    for a, b in {rings!r}:\n        state[a:b] = np.nan"] if rings else []  # reads before row 0
    inits += [f"    ext_init(state, {o}, {n.params[0]}, {n.params[1]})" for n, o in lay.slots.items() if n.op == "wext"]
    inits += [f"    state[{o}:{o + _STATE[n.op]}] = np.nan" for n, o in lay.slots.items() if n.op in _STARTS_NAN]
    return (
        '"""Generated by bqx.features.spec for the features ' + ", ".join(names[:4])
        + (", ..." if len(names) > 4 else "") + '; do not edit."""\n'
        f"# primitives {_primitives_digest()}\n"
        "import numpy as np\nfrom numba import njit\n"
        "from bqx.features.incremental import (back, both, cusum, eq, ext_init, group_ext, group_first, gt, hmm3,\n"
        "                                      nmax, nmin, pick, push, rank_of, select, since, wentropy, wext, wmad,\n"
        "                                      wmoments, wpoly, wquant, wsort, wsum, wvar)\n"
        "from bqx.features.latest import ewm, sdiv\n\n"
        f"STATE = {lay.size}\nCHUNK = {BATCH_CHUNK}\n\n\n"
        "@njit(cache=True)\ndef init(state):\n" + "\n".join(inits) + "\n\n\n" + parts +
        "@njit(cache=True, error_model='numpy')\n"
        f"def rows(t0, t1, {args}, state, out):\n"
        f"    # rows t0 .. t1 - 1, row t's features at out[(t - t0) * {k} + j]: one loop for batch and step\n"
        "    p = int(state[0])  # the rows stepped before this one: every ring's write position\n"
        "    for t in range(t0, t1):\n"
        f"        o = (t - t0) * {k}\n        "
        + "\n        ".join(body + step_out) + "\n"
        "        p += 1\n"
        "    state[0] = p\n\n\n"
        "@njit(cache=True, error_model='numpy')\n"
        f"def step(t, {args}, state, out):\n"
        f"    rows(t, t + 1, {args}, state, out)\n"
        f"    return {lay.size}\n\n\n"
        "@njit(cache=True, error_model='numpy')\n"
        f"def batch({args}, state, out):\n"
        "    init(state)\n"
        f"    buf = np.empty(CHUNK * {k})\n"
        "    n = len(out[0])\n"
        "    for t0 in range(0, n, CHUNK):\n"
        "        m = min(CHUNK, n - t0)\n"
        f"        rows(t0, t0 + m, {args}, state, buf)\n"
        f"        for j in range({k}):\n"
        "            col = out[j]\n"
        "            for i in range(m):\n"
        f"                col[t0 + i] = buf[i * {k} + j]\n"
    )


def _kernel_dir() -> Path:
    """Where generated kernels are written (``BQX_KERNEL_DIR``, else the user's cache)."""
    env = os.environ.get("BQX_KERNEL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bqx" / "kernels"


def _load(src: str) -> ModuleType:
    digest = hashlib.sha256(src.encode()).hexdigest()[:20]
    name = f"bqx_kernel_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    try:
        folder = _kernel_dir()
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: a private temporary folder (numba then compiles each process)
        folder = Path(tempfile.gettempdir()) / f"bqx-kernels-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists() or path.read_text() != src:  # unchanged files keep their mtime: numba's cache holds
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Kernel:
    """One table's generated kernel: its feature names, inputs (argument order) and state size."""

    names: tuple[str, ...]
    inputs: tuple[str, ...]
    state_size: int
    module: ModuleType
    input_lookback: Mapping[str, int]  # rows of each input series the longest output needs
    params: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # name -> shape, in argument order

    @property
    def step(self) -> Callable[..., int]:
        return self.module.step

    def init(self, state: np.ndarray) -> None:
        self.module.init(state)

    def _inputs(self, arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(arrays[s], dtype=np.int64 if s == "ts_ns" else np.float64) for s in self.inputs]

    def batch(self, arrays: Mapping[str, np.ndarray], params: tuple = ()) -> dict[str, np.ndarray]:
        """Every feature on every row of the input series (float64 columns); ``params`` in the kernel's
        order (:meth:`coerce` makes them the types the kernel was compiled for)."""
        ins = self._inputs(arrays)
        n = len(ins[0]) if ins else 0
        # one array per feature: each is reused from the process's freed memory, where one block of every
        # column (over glibc's 32 MB mmap ceiling for most tables) would be faulted in fresh every call
        out = tuple(np.empty(n) for _ in self.names)
        self.module.batch(*ins, *self.coerce(params), np.zeros(self.state_size), out)
        return dict(zip(self.names, out, strict=True))

    def warm(self) -> None:
        """Compile (or load from numba's cache) both forms with the argument types later calls pass:
        ``batch`` over two rows, ``step`` (what the serving engine calls per bar) on one. The two are
        separate machine code around the same row loop, so running one does not compile the other."""
        arrays = {s: np.zeros(2) for s in self.inputs}
        params = self.placeholder_params()
        self.batch(arrays, params)
        state = np.zeros(self.state_size)
        self.init(state)
        self.step(0, *self._inputs(arrays), *self.coerce(params), state, np.empty(len(self.names)))

    def coerce(self, values: tuple) -> tuple:
        """Parameters as the kernel takes them: float scalars and C-contiguous float64 arrays of the
        declared shapes (one machine-code signature, the one ``bqx kernels`` compiles)."""
        if len(values) != len(self.params):
            raise ValueError(f"kernel of {self.names[0]}, ...: {len(values)} parameters for {list(self.params)}")
        out = []
        for (name, shape), v in zip(self.params.items(), values, strict=True):
            if shape:
                a = np.ascontiguousarray(v, dtype=np.float64)
                if a.shape != shape:
                    raise ValueError(f"parameter {name}: shape {a.shape}, declared {shape}")
                out.append(a)
            else:
                out.append(float(v))
        return tuple(out)

    def placeholder_params(self) -> tuple:
        """NaN parameters of the declared shapes: what compiling the kernel runs it with."""
        return tuple(np.full(shape, np.nan) if shape else np.nan for shape in self.params.values())

    def warmup(self, input_warmup: Mapping[str, int] | None = None) -> int:
        """Rows until every feature is settled: the longest path of lookbacks from an input (plus that
        input's own warm-up), a recursive average counting 6/alpha rows."""
        warm = input_warmup or {}
        return max((lb + warm.get(s, 0) for s, lb in self.input_lookback.items()), default=0) + 1


def _input_lookback(outputs: list[Expr]) -> dict[str, int]:
    """For each input series, the longest chain of lookbacks from it to an output."""
    memo: dict[Expr, dict[str, int]] = {}
    for n in _order(outputs):
        if n.op == "in":
            memo[n] = {n.params[0]: 0}
            continue
        own = _lookback(n)
        acc: dict[str, int] = {}
        for a in n.args:
            for s, lb in memo[a].items():
                acc[s] = max(acc.get(s, 0), lb + own)
        memo[n] = acc
    total: dict[str, int] = {}
    for out in outputs:
        for s, lb in memo[out].items():
            total[s] = max(total.get(s, 0), lb)
    return total


_KERNELS: dict[tuple[tuple[tuple[str, Expr], ...], tuple[str, ...]], Kernel] = {}


def compile_table(table: Mapping[str, Expr] | Iterable[tuple[str, Expr]], params: tuple[str, ...] = ()) -> Kernel:
    """The kernel of a table of named expressions (memoised per process; numba caches on disk);
    ``params`` names the table's :func:`param` nodes in the order the kernel takes them."""
    items = tuple(table.items()) if isinstance(table, Mapping) else tuple(table)
    kernel = _KERNELS.get((items, params))
    if kernel is None:
        names = [name for name, _ in items]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"feature names declared twice: {dup}")
        outputs = [_e(e) for _, e in items]
        lay = layout(outputs)
        if set(lay.params) != set(params):
            raise ValueError(f"parameters used {sorted(lay.params)}, named {sorted(params)}")
        module = _load(source(names, outputs, lay, params))
        kernel = Kernel(tuple(names), lay.inputs, lay.size, module, _input_lookback(outputs),
                        {p: lay.params[p] for p in params})
        _KERNELS[(items, params)] = kernel
    return kernel
