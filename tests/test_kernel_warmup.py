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
