"""``warm_extract`` (what ``bqx kernels`` and the images' build run) reaches every numba function a real
extract calls, with the same argument types: after it, an extract compiles nothing new. Checked in a
fresh Python, where no function has been called yet."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, sys, tempfile
from numba.core.registry import CPUDispatcher

def signatures():
    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("bqx"):
            for attr, obj in list(vars(module).items()):
                if isinstance(obj, CPUDispatcher):
                    found[f"{name}.{attr}"] = [str(s) for s in obj.signatures]
    return found

from bqx.config import Settings
from bqx.extract import extract_pair, warm_extract
from bqx.panel import build_panel
from bqx.sample import generate

settings = Settings()
cold = signatures()
warm_extract(settings)
warm = signatures()
bars = generate(days=6, seed=11)
with tempfile.TemporaryDirectory() as out:
    extract_pair(bars["gbpjpy"], "gbpjpy", settings, out, build_panel(bars, settings))
print(json.dumps({"cold": cold, "warm": warm, "real": signatures()}))
"""


def test_after_the_warm_extract_a_real_extract_compiles_nothing_new():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=900, check=True)
    got = json.loads(done.stdout.splitlines()[-1])
    cold, warm, real = got["cold"], got["warm"], got["real"]
    fit = "bqx.features.hmm_regime._baum_welch"  # written by hand, not one of the declared kernels
    assert cold[fit] == [] and len(warm[fit]) == 1
    assert sum(map(len, warm.values())) > sum(map(len, cold.values())) + 5
    new = {name: sorted(set(sigs) - set(warm.get(name, []))) for name, sigs in real.items()}
    assert {name: sigs for name, sigs in new.items() if sigs} == {}


ONLINE_PROBE = r"""
import json, sys
from numba.core.registry import CPUDispatcher

def kernels():
    return {f"{name}.{attr}": [str(s) for s in obj.signatures] for name, module in list(sys.modules.items())
            if name.startswith("bqx_kernel_") for attr, obj in list(vars(module).items())
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == name}  # its own, not the primitives

from bqx.config import Settings
from bqx.features.registry import FAMILIES, compile_declared
from bqx.sample import generate
from bqx.serving.engine import PairEngine, market_keep
from bqx.serving.market import Market

settings = Settings()
list(compile_declared(settings))
warm = kernels()
bars = generate(days=3, seed=3)
market = Market(bars, settings, market_keep(settings))
PairEngine("eurusd", bars["eurusd"], list(FAMILIES), settings, max_lag=60, market=market)
print(json.dumps({"warm": warm, "served": kernels()}))
"""


def test_after_bqx_kernels_the_serving_engine_compiles_no_kernel():
    """``bqx kernels`` compiles each generated kernel's batch and its one-bar step (separate machine
    code): an engine seeded and stepped afterwards finds both compiled, with its argument types."""
    done = subprocess.run([sys.executable, "-c", ONLINE_PROBE], capture_output=True, text=True, timeout=900,
                          check=True)
    got = json.loads(done.stdout.splitlines()[-1])
    warm, served = got["warm"], got["served"]
    assert [k for k in warm if k.endswith(".step") and warm[k]], "no step compiled"
    new = {name: sorted(set(sigs) - set(warm.get(name, []))) for name, sigs in served.items()}
    assert {name: sigs for name, sigs in new.items() if sigs} == {}
