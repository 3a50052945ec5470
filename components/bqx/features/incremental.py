"""One-row primitives with carried state, the building blocks of generated feature kernels
(:mod:`bqx.features.spec`).

A kernel computes every feature of a table at row t from the row's inputs and a float64 state
vector; the same kernel runs over every row for the batch table and once per new bar online, so
batch and online agree by construction. The state holds, at offsets the generator assigns:

- the **row index**: rows stepped so far, one slot (0) for every ring of the kernel (each is written
  once a row), passed to the primitives as ``p``, the current row's index;
- a **ring** of a series' recent values (2 C slots for a power-of-two capacity C: the values twice
  over, so a window is contiguous; row p is at p mod C), for every series something reads back in
  time; rings start NaN, so a read before the first row is NaN without a check;
- a **window** statistic's running sums (``wsum``/``wvar``), refreshed exactly from the ring every
  W rows so rounding cannot drift, and a count of NaNs inside the window;
- a window **extreme** (``wext``) with its age: a running extreme of the current block of w rows and
  the previous block's suffix extremes;
- a **sorted window** (``wsort``): the window's finite values in order, for quantiles and histograms;
- a recursive average (``latest.ewm``);
- the rows since an event (``since``), and a run's first value or extreme so far (``group_first``,
  ``group_ext``: a session's opening price, the FX day's high), which restart when a key changes;
- recursive filters: a Gaussian HMM's forward filter (``hmm3``, with fitted parameters passed to the
  kernel) and a two-sided CUSUM (``cusum``);
- stateless: one of several values, or its rank among them, by an index passed as a parameter
  (``pick``, ``rank_of``: a pair's base currency among the 8 strengths).

Conventions are the batch ones (:mod:`bqx.features.rolling`): a window that starts before row 0
or holds a non-finite value is NaN; averages start at their first finite input.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan
NEVER = 1e18  # an age no window reaches: "nothing seen yet"
WSUM_SLOTS = 3  # sum, non-finite values in the window, nonzero values
WVAR_SLOTS = 4  # sum and sum of squares of centred values, non-finite count, centre
WEXT_HEAD = 3  # the current block's extreme so far, its row, rows since the last non-finite value; then
# the previous block's suffix extremes (w + 1, the last an empty suffix) and their rows (w + 1)
WPOLY_SLOTS = 6  # sums of y, u y, u^2 y, y^2 (centred), non-finite count, centre
WSORT_HEAD = 2  # finite values held, non-finite values in the window; then the w sorted values
HMM_SLOTS = 7  # the filtered probabilities (3), the prior (3), rows filtered


@njit(cache=True, inline="always")
def push(state: np.ndarray, r: int, cap: int, p: int, x: float) -> None:
    """Write row p's value x into the ring at r (capacity ``cap``, a power of two; the values held
    twice over: see :func:`window`)."""
    i = p & (cap - 1)
    state[r + i] = x
    state[r + cap + i] = x


@njit(cache=True, inline="always")
def window(state: np.ndarray, r: int, cap: int, p: int, w: int) -> np.ndarray:
    """The last w values of the ring at r up to row p, oldest first, as one contiguous view (w <= cap):
    each value is written at its position and again ``cap`` slots later, so any run of up to ``cap`` of
    them ending at the newest lies unbroken in the second copy's span. Loops over a window then run
    over plain memory, which the compiler vectorises. Rows before the first are NaN (rings start NaN)."""
    end = r + cap + (p & (cap - 1)) + 1
    return state[end - w:end]


@njit(cache=True, inline="always")
def back(state: np.ndarray, r: int, cap: int, p: int, k: int) -> float:
    """The value of row p - k (k < cap); NaN before the first row, as the ring starts NaN."""
    return state[r + cap + (p & (cap - 1)) - k]


@njit(cache=True, inline="always")
def _refresh_sum(state: np.ndarray, r: int, cap: int, p: int, w: int, c: float) -> tuple[float, float]:
    """Sum and sum of squares of the finite values among the last w minus c, read straight from the ring."""
    s1 = 0.0
    s2 = 0.0
    y = window(state, r, cap, p, w)
    for i in range(w):  # indices from 0: no wrap-around for negative ones, so no gathers
        v = y[i]
        d = v - c if np.isfinite(v) else 0.0
        s1 += d
        s2 += d * d
    return s1, s2


@njit(cache=True, inline="always")
def wsum(state: np.ndarray, o: int, r: int, cap: int, p: int, w: int, x: float) -> float:
    """Sum of the last w values of the ring at r (row p's value x was just pushed); the running sum is
    recomputed exactly every w rows, and a window whose every value is 0 sums to exactly 0 (a stale
    quote's zero returns leave no rounding residue to rank or divide by). The counts are added as
    0 or 1, not branched on: whether a return is 0 is as unpredictable as the market."""
    fin = np.isfinite(x)
    state[o] += x if fin else 0.0
    state[o + 1] += 0.0 if fin else 1.0
    state[o + 2] += 1.0 if fin and x != 0.0 else 0.0
    if p >= w:
        old = back(state, r, cap, p, w)
        fin = np.isfinite(old)
        state[o] -= old if fin else 0.0
        state[o + 1] -= 0.0 if fin else 1.0
        state[o + 2] -= 1.0 if fin and old != 0.0 else 0.0
    if (p + 1) % w == 0:
        state[o] = _refresh_sum(state, r, cap, p, w, 0.0)[0]
    if p + 1 < w or state[o + 1] > 0.0:
        return NAN
    return state[o] if state[o + 2] > 0.0 else 0.0


@njit(cache=True)
def wvar(state: np.ndarray, o: int, r: int, cap: int, p: int, w: int, ddof: int, x: float) -> float:
    """Variance of the last w values (ddof 0 or 1) from sums of values centred on a recent one; the
    sums are recomputed exactly (with a new centre) every w rows, so they stay well conditioned."""
    c = state[o + 3]
    fin = np.isfinite(x)
    d = x - c if fin else 0.0
    state[o] += d
    state[o + 1] += d * d
    state[o + 2] += 0.0 if fin else 1.0
    if p >= w:
        old = back(state, r, cap, p, w)
        fin = np.isfinite(old)
        d = old - c if fin else 0.0
        state[o] -= d
        state[o + 1] -= d * d
        state[o + 2] -= 0.0 if fin else 1.0
    if (p + 1) % w == 0:
        c = x if np.isfinite(x) else 0.0
        s1, s2 = _refresh_sum(state, r, cap, p, w, c)
        state[o], state[o + 1], state[o + 3] = s1, s2, c
    if p + 1 < w or state[o + 2] > 0.0:
        return NAN
    s1 = state[o]
    return max((state[o + 1] - s1 * s1 / w) / (w - ddof), 0.0)


@njit(cache=True)
def _suffix_ext(state: np.ndarray, s: int, r: int, cap: int, p: int, w: int, highest: bool) -> None:
    """At the end of a block of w rows (row p is its last): the extreme of each suffix of the block and
    the row it is on (the most recent on ties), non-finite values left out, for the next block's rows."""
    worst = -np.inf if highest else np.inf
    y = window(state, r, cap, p, w)
    best, at = worst, NAN
    for j in range(w):
        i = w - 1 - j
        v = y[i] if np.isfinite(y[i]) else worst
        if (v > best) if highest else (v < best):
            best, at = v, float(p - j)
        state[s + i] = best
        state[s + w + 1 + i] = at


@njit(cache=True, inline="always")
def wext(state: np.ndarray, o: int, r: int, cap: int, p: int, w: int, highest: bool, age: bool, x: float) -> float:
    """The highest (or lowest) of the last w values, or with ``age`` the rows since it (the most recent
    on ties), in O(1) a row without a data-dependent branch (van Herk / Gil-Werman, online): rows fall
    into blocks of w, and the window at row p is a suffix of the previous block (whose suffix extremes
    were computed when it ended) followed by a prefix of the current one (a running extreme)."""
    worst = -np.inf if highest else np.inf
    fin = np.isfinite(x)
    v = x if fin else worst
    state[o + 2] = state[o + 2] + 1.0 if fin else 0.0  # rows since the last non-finite value
    q = p % w
    best, at = state[o], state[o + 1]
    if q == 0 or ((v >= best) if highest else (v <= best)):
        best, at = v, float(p)
    state[o], state[o + 1] = best, at
    s = o + WEXT_HEAD
    older, older_at = state[s + q + 1], state[s + w + 1 + q + 1]  # the previous block's rows still inside
    if (older > best) if highest else (older < best):  # ties go to the current block's, the more recent
        best, at = older, older_at
    if q == w - 1:
        _suffix_ext(state, s, r, cap, p, w, highest)
    if p + 1 < w or state[o + 2] < w:
        return NAN
    return p - at if age else best


@njit(cache=True)
def wpoly(state: np.ndarray, o: int, r: int, cap: int, p: int, w: int, x: float
          ) -> tuple[float, float, float, float, float]:
    """The moments a quadratic fit over the last w values needs, in the symmetric basis u = (j - m) / m
    (j = 0 oldest .. w - 1 newest, m = (w - 1) / 2): sum y, sum u y, sum u^2 y and sum y^2 of the values
    less a centre c, and c. Sliding one row moves every u by -1/m, so the sums update in O(1); they are
    recomputed exactly (with a new centre) every w rows. NaN while the window is short or holds a
    non-finite value."""
    c = state[o + 5]
    if not np.isfinite(x):
        state[o + 4] += 1.0
    if p >= w:
        old = back(state, r, cap, p, w)
        if not np.isfinite(old):
            state[o + 4] -= 1.0
        yo = old - c if np.isfinite(old) else 0.0
        yn = x - c if np.isfinite(x) else 0.0
        d = 2.0 / (w - 1)  # 1 / m
        r0, r1, r2 = state[o] - yo, state[o + 1] + yo, state[o + 2] - yo
        state[o] = r0 + yn
        state[o + 1] = r1 - d * r0 + yn
        state[o + 2] = r2 - 2.0 * d * r1 + d * d * r0 + yn
        state[o + 3] += yn * yn - yo * yo
    if (p + 1) % w == 0:
        c = x if np.isfinite(x) else 0.0
        m = (w - 1) / 2.0
        s0 = s1 = s2 = sq = 0.0
        for k in range(w):
            v = back(state, r, cap, p, k)
            if np.isfinite(v):
                u = (w - 1 - k - m) / m
                s0 += v - c
                s1 += u * (v - c)
                s2 += u * u * (v - c)
                sq += (v - c) * (v - c)
        state[o], state[o + 1], state[o + 2], state[o + 3], state[o + 5] = s0, s1, s2, sq, c
    if p + 1 < w or state[o + 4] > 0.0:
        return NAN, NAN, NAN, NAN, NAN
    return state[o], state[o + 1], state[o + 2], state[o + 3], c


@njit(cache=True, inline="always")
def ext_init(state: np.ndarray, o: int, w: int, highest: bool) -> None:
    state[o:o + WEXT_HEAD + 2 * (w + 1)] = NAN
    state[o + 2] = NEVER
    state[o + WEXT_HEAD:o + WEXT_HEAD + w + 1] = -np.inf if highest else np.inf


@njit(cache=True, fastmath={"reassoc"})
def wmad(state: np.ndarray, r: int, cap: int, p: int, w: int, mean: float) -> float:
    """Mean absolute deviation of the last w values from their mean (the window's ``wmean``): O(w),
    vectorised (the sum's order is fixed by the compiled code, the same for every caller)."""
    if p + 1 < w or not np.isfinite(mean):
        return NAN
    d = 0.0
    y = window(state, r, cap, p, w)
    for i in range(w):  # indices from 0: a contiguous load, not a gather (see _refresh_sum)
        d += abs(y[i] - mean)
    return d / w


@njit(cache=True, inline="always")
def nmax(a: float, b: float) -> float:
    """max with NaN propagated (as np.maximum)."""
    if np.isnan(a) or np.isnan(b):
        return NAN
    return a if a >= b else b


@njit(cache=True, inline="always")
def nmin(a: float, b: float) -> float:
    if np.isnan(a) or np.isnan(b):
        return NAN
    return a if a <= b else b


@njit(cache=True, inline="always")
def gt(a: float, b: float) -> float:
    """1.0 where a > b, 0.0 where not, NaN where either side is NaN."""
    if np.isnan(a) or np.isnan(b):
        return NAN
    return 1.0 if a > b else 0.0


@njit(cache=True, inline="always")
def eq(a: float, b: float) -> float:
    if np.isnan(a) or np.isnan(b):
        return NAN
    return 1.0 if a == b else 0.0


@njit(cache=True, inline="always")
def both(a: float, b: float) -> float:
    if np.isnan(a) or np.isnan(b):
        return NAN
    return 1.0 if (a > 0.0 and b > 0.0) else 0.0


@njit(cache=True, inline="always")
def select(c: float, a: float, b: float) -> float:
    """a where c holds, b where not, NaN where c is NaN."""
    if np.isnan(c):
        return NAN
    return a if c > 0.0 else b


TIE = 1e-9  # relative (absolute below 1): values this close rank as equal, in order of position


@njit(cache=True, inline="always")
def pick(i: float, values: tuple) -> float:
    """values[i] for an index passed as a float parameter; NaN for an index out of range (or NaN)."""
    if not (0.0 <= i < len(values)):
        return NAN
    return values[int(i)]


@njit(cache=True)
def rank_of(i: float, values: tuple) -> float:
    """Rank of values[i] among the finite values (1 = the largest); NaN where it is not finite. Values
    within :data:`TIE` of each other rank in order of position, so sums equal in exact arithmetic are
    not ordered by their last bits."""
    if not (0.0 <= i < len(values)):
        return NAN
    j = int(i)
    v = values[j]
    if not np.isfinite(v):
        return NAN
    rank = 1.0
    for k in range(len(values)):
        u = values[k]
        if k == j or not np.isfinite(u):
            continue
        close = abs(u - v) <= TIE * max(abs(u), abs(v), 1.0)
        if (close and k < j) or (not close and u > v):
            rank += 1.0
    return rank


@njit(cache=True, inline="always")
def _count_below(state: np.ndarray, base: int, m: int, x: float) -> int:
    """How many of the sorted state[base:base + m] are < x (the first position whose value is >= x): a
    binary search whose steps depend on m alone and pick their half by a conditional move, not a
    branch the CPU must guess."""
    if m == 0:
        return 0
    lo = 0
    n = m
    while n > 1:
        half = n >> 1
        lo = lo + half if state[base + lo + half - 1] < x else lo
        n -= half
    return lo + (1 if state[base + lo] < x else 0)


@njit(cache=True)
def wsort(state: np.ndarray, o: int, r: int, cap: int, p: int, w: int, x: float) -> float:
    """Keep the last w values of the ring at r sorted (the finite ones; non-finite ones are counted):
    the leaving value and the new one's place are found by binary search, and only the values between
    them move (a third of the window on average; O(w) a row at worst).
    Returns 1.0 when the window is full and finite, else NaN: the readiness its readers propagate."""
    base = o + WSORT_HEAD
    m = int(state[o])
    old = back(state, r, cap, p, w) if p >= w else NAN
    if np.isfinite(old) and np.isfinite(x):  # one value out, one in: shift only the values between them
        y = state[base:base + m]
        j = _count_below(state, base, m, old)  # where the leaving value is (the first of its equals)
        i = _count_below(state, base, m, x)  # where x goes, the leaving value still in
        if i <= j:
            z = y[i:j + 1]
            for k in range(len(z) - 1, 0, -1):
                z[k] = z[k - 1]
            y[i] = x
        else:
            z = y[j:i]
            for k in range(len(z) - 1):
                z[k] = z[k + 1]
            y[i - 1] = x
    else:
        if p >= w:
            if np.isfinite(old):
                for k in range(base + _count_below(state, base, m, old), base + m - 1):
                    state[k] = state[k + 1]
                m -= 1
            else:
                state[o + 1] -= 1.0
        if np.isfinite(x):
            i = base + _count_below(state, base, m, x)
            for k in range(base + m, i, -1):
                state[k] = state[k - 1]
            state[i] = x
            m += 1
        else:
            state[o + 1] += 1.0
    state[o] = m
    if p + 1 < w or state[o + 1] > 0.0:
        return NAN
    return 1.0


@njit(cache=True, inline="always")
def wquant(state: np.ndarray, o: int, w: int, q: float, ready: float) -> float:
    """The q-quantile of a full sorted window at o, interpolated linearly between order statistics
    (numpy's default ``percentile``)."""
    if np.isnan(ready):
        return NAN
    base = o + WSORT_HEAD
    pos = q * (w - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, w - 1)
    return state[base + lo] + (pos - lo) * (state[base + hi] - state[base + lo])


_CLOGC = np.array([0.0] + [c * np.log(c) for c in range(1, 4097)])  # c log c for a bin's count c (0 log 0 = 0)


@njit(cache=True)
def wentropy(state: np.ndarray, o: int, w: int, bins: int, ready: float) -> float:
    """Shannon entropy of a ``bins``-bin histogram spanning the window's range (``numpy.histogram``'s
    bins: edges lo + j (hi - lo) / bins, each bin closed below, the last closed above too), over
    ln(bins) so it lies in [0, 1]; NaN for a flat window. The window is sorted, so each bin's count is
    a difference of two binary searches over the whole window: O(bins log w), the searches independent of
    each other, so the processor runs them side by side (a search from the previous edge on would wait
    for it)."""
    if np.isnan(ready):
        return NAN
    base = o + WSORT_HEAD
    lo, hi = state[base], state[base + w - 1]
    if not hi > lo:
        return NAN
    step = (hi - lo) / bins
    clogc = 0.0  # sum of c log c over the bins' counts c: the entropy is log w - clogc / w
    below = 0  # values under the current bin's lower edge (< w before the last bin: hi is in the window)
    for k in range(bins):
        upto = w if k == bins - 1 else _count_below(state, base, w, (k + 1) * step + lo)
        c = upto - below
        clogc += _CLOGC[c] if c < len(_CLOGC) else c * np.log(c)
        below = upto
    return (np.log(w) - clogc / w) / np.log(bins)


@njit(cache=True, fastmath={"reassoc"})
def wmoments(state: np.ndarray, r: int, cap: int, p: int, w: int) -> tuple[float, float, float, float]:
    """Central moments m2, m3, m4 (divided by w) of the last w values and their lag-1 autocorrelation
    (Pearson, of the w - 1 consecutive pairs), computed exactly from the window in two vectorised
    passes, O(w). NaN while the window is short or holds a non-finite value; the correlation is NaN
    when either side of the pairs is constant."""
    if p + 1 < w:
        return NAN, NAN, NAN, NAN
    y = window(state, r, cap, p, w)  # oldest first; pairs (y[i], y[i + 1])
    s = 0.0
    differ_a = differ_b = 0  # values of the pairs' earlier side unlike its first; of the later side unlike its last
    for i in range(w):
        s += y[i]
    if not np.isfinite(s):
        return NAN, NAN, NAN, NAN
    for i in range(1, w - 1):
        differ_a += y[i] != y[0]
        differ_b += y[i] != y[w - 1]
    flat_a, flat_b = differ_a == 0, differ_b == 0
    mean, ma, mb = s / w, (s - y[w - 1]) / (w - 1), (s - y[0]) / (w - 1)
    m2 = m3 = m4 = 0.0
    for i in range(w):
        c = y[i] - mean
        c2 = c * c
        m2 += c2
        m3 += c2 * c
        m4 += c2 * c2
    sab = saa = sbb = 0.0
    for i in range(w - 1):
        a = y[i] - ma
        b = y[i + 1] - mb
        sab += a * b
        saa += a * a
        sbb += b * b
    ac = NAN if flat_a or flat_b or saa <= 0.0 or sbb <= 0.0 else sab / np.sqrt(saa * sbb)
    return m2 / w, m3 / w, m4 / w, ac


@njit(cache=True, inline="always")
def since(state: np.ndarray, o: int, event: float) -> float:
    """Rows since ``event`` last held (0 on an event row); NaN before the first (the slot starts NaN)."""
    if event > 0.0:
        state[o] = 0.0
    else:
        state[o] += 1.0
    return state[o]


@njit(cache=True, inline="always")
def group_first(state: np.ndarray, o: int, x: float, key: float) -> float:
    """x on the first row of the current run of equal ``key`` values (a session's opening price)."""
    if key != state[o]:
        state[o], state[o + 1] = key, x
    return state[o + 1]


@njit(cache=True, inline="always")
def group_ext(state: np.ndarray, o: int, x: float, key: float, highest: bool) -> float:
    """The highest (or lowest) x so far in the current run of equal ``key`` values (the FX day's high)."""
    if key != state[o]:
        state[o], state[o + 1] = key, x
    elif highest:
        state[o + 1] = max(state[o + 1], x)
    else:
        state[o + 1] = min(state[o + 1], x)
    return state[o + 1]


@njit(cache=True)
def hmm3(state: np.ndarray, o: int, t: int, x: float, start: float, init: np.ndarray, trans: np.ndarray,
         mu: np.ndarray, var: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """One step of a 3-state Gaussian HMM's forward filter: P(state_t | x up to t). It starts at row
    ``start`` from the prior ``init`` and then predicts each row's prior through ``trans``; before that,
    or with unfitted (NaN) parameters, everything is NaN. Returns the filtered probabilities, the log
    predictive density of x (-inf when no state explains it; the prior is then kept) and the predictive
    mean and variance of x."""
    a, pr, rows = o, o + 3, o + 6
    if state[rows] == 0.0 and (t < start or np.isnan(var[0])):
        return NAN, NAN, NAN, NAN, NAN, NAN
    for j in range(3):
        if state[rows] == 0.0:
            state[pr + j] = init[j]
        else:
            state[pr + j] = state[a] * trans[0, j] + state[a + 1] * trans[1, j] + state[a + 2] * trans[2, j]
    c = 0.0
    for j in range(3):
        joint = state[pr + j] * np.exp(-0.5 * (x - mu[j]) ** 2 / var[j]) / np.sqrt(2 * np.pi * var[j])
        state[a + j] = joint
        c += joint
    if c <= 0.0 or not np.isfinite(c):
        loglik = -np.inf
        for j in range(3):
            state[a + j] = state[pr + j]
    else:
        loglik = np.log(c)
        for j in range(3):
            state[a + j] /= c
    mean = second = 0.0
    for j in range(3):
        mean += state[pr + j] * mu[j]
        second += state[pr + j] * (var[j] + mu[j] ** 2)
    state[rows] += 1.0
    return state[a], state[a + 1], state[a + 2], loglik, mean, second - mean * mean


@njit(cache=True, inline="always")
def cusum(state: np.ndarray, o: int, z: float, k: float, h: float) -> tuple[float, float, float]:
    """Two-sided CUSUM: the sums before this row's reset and the alarm; NaN rows leave the sums alone."""
    if np.isnan(z):
        return NAN, NAN, NAN
    sp = max(0.0, state[o] + z - k)
    sn = max(0.0, state[o + 1] - z - k)
    alarm = 1.0 if (sp > h or sn > h) else 0.0
    state[o], state[o + 1] = (0.0, 0.0) if alarm else (sp, sn)
    return sp, sn, alarm
