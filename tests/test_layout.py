"""The layout keeps its promises: stage names, modules and images agree, no import cycles, shared
vocabulary (column names, artifact file names) has one home each, and the README's layout names the tree."""

import ast
import importlib
import re
from pathlib import Path

from bqx.config import STAGE_SECTIONS
from bqx.kubeflow.images import STAGES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "components" / "bqx"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(("bqx", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        out[name] = p
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bqx"):
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
            found |= {node.module} & set(modules)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
    return found - {"bqx"}


def test_no_import_cycles_between_bqx_modules():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    cycles = sorted(f"{a} <-> {b}" for a in graph for b in graph[a] if a < b and reaches(b, a))
    assert not cycles, cycles


def test_every_stage_has_a_module_and_an_image_of_its_name():
    assert set(STAGES) == set(STAGE_SECTIONS)
    for stage in STAGES:
        importlib.import_module(f"bqx.{stage}")  # bqx/lag.py, bqx/select.py, bqx/train/, bqx/drift/, ...


def test_artifact_file_names_and_column_parsing_have_one_home():
    names = re.compile(r'"(features|panel|selection|online_state|lag_plan|splits|meta|reference|'
                       r'manifest|model|train|val|test)\.(parquet|json|tar\.gz|cbm)"')
    lag = re.compile(r'rpartition\("_lag"\)|"_lag"')
    for path in PACKAGE.rglob("*.py"):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        if path.name != "artifacts.py":
            assert not names.search(text), f"{path.relative_to(ROOT)}: use bqx.artifacts, not the literal name"
        if path.name != "columns.py":
            assert not lag.search(text), f"{path.relative_to(ROOT)}: parse column names with bqx.columns"


def test_the_readme_layout_names_every_module_and_package():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```")[1]
    words = set(re.findall(r"[a-z_]+", block))
    entries = {p.stem for p in PACKAGE.iterdir() if (p.suffix == ".py" and p.stem != "__init__")
               or (p.is_dir() and (p / "__init__.py").exists())}
    assert not entries - words, f"README layout misses {sorted(entries - words)}"
