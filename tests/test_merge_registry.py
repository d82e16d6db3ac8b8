"""The merge-method registry: one object per method, merge plans checked without a model, module shape rules."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from mixmerge.merging.methods import METHODS, PARAM_DEFAULTS, expand_merges, merge_plan, resolve_params
from mixmerge.merging.mergekit_runner import MergekitMethod
from mixmerge.merging.params import Param
from mixmerge.merging.registry import MergeMethod
from mixmerge.merging.stream_runner import StudyMethod

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mixmerge" / "merging"


def test_every_method_is_one_registered_object():
    assert set(METHODS) == {"average", "task_arithmetic", "ta_dare", "ties", "ties_dare", "sce",
                            "average_study", "task_arithmetic_study", "ta_dare_study", "ties_study",
                            "ties_dare_study", "sce_study"}
    for name, method in METHODS.items():
        assert isinstance(method, MergeMethod) and method.name == name
        assert all(isinstance(p, Param) for p in method.params)
        assert isinstance(method, MergekitMethod if method.family == "mergekit" else StudyMethod)
        assert method.description
    assert PARAM_DEFAULTS == {"lambda": 1.0, "density": 0.2, "drop": 0.2, "select_topk": 1.0, "weight": 1.0}


def test_merge_plan_names_the_unknown_parameter():
    with pytest.raises(ValueError, match=r"^merges\.ties\.params\.densty: unknown parameter 'densty'"):
        merge_plan("ties", {"method": "ties_study", "params": {"densty": 0.2}})


@pytest.mark.parametrize("spec, key", [
    ({"method": "ties_study", "params": {"density": 0.0}}, r"merges\.m\.params\.density: density=0 outside"),
    ({"method": "ta_dare_study", "params": {"drop": [0.1, 1.0]}}, r"merges\.m\.params\.drop: drop=1 outside"),
    ({"method": "sce_study", "params": {"select_topk": float("nan")}}, r"merges\.m\.params\.select_topk"),
    ({"method": "ties", "params": {"lambda": True}}, r"merges\.m\.params\.lambda: lambda must be"),
    ({"method": "tiez"}, r"merges\.m\.method: unknown merge method 'tiez'"),
    ({"method": "ties", "params": [1]}, r"merges\.m\.params: expected a mapping"),
    ({"method": "ties", "extra": 1}, r"merges\.m: unknown keys"),
    ({"params": {}}, r"merges\.m: expected a mapping with a 'method' key"),
])
def test_merge_plan_errors(spec, key):
    with pytest.raises(ValueError, match=key):
        merge_plan("m", spec)


def test_merge_plan_points_and_expert_weights():
    plan = merge_plan("ties", {"method": "ties_study", "params": {"density": [0.1, 0.2], "lambda": 0.5}})
    assert set(plan) == {"ties-density0.1", "ties-density0.2"}
    point = plan["ties-density0.1"]
    assert point == {"method": "ties_study", "params": {"lambda": 0.5, "weight": 1.0, "density": 0.1},
                     "family": "study", "engine": "mixmerge.merging.stream",
                     "description": METHODS["ties_study"].description}
    assert merge_plan("a", {"method": "average"})["a"]["engine"] == "mergekit"
    assert resolve_params("ties", {"weight": [1, 2, 3]}, 3)["weight"] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="3 values for 4 experts"):
        resolve_params("ties", {"weight": [1, 2, 3]}, 4)
    with pytest.raises(ValueError, match="defined twice"):
        expand_merges({"x": {"method": "ties", "params": {"lambda": [1, 1.0]}}})


def test_merge_plans_need_no_torch():
    code = ("import sys; from mixmerge.merging.methods import merge_plan, expand_merges; "
            "merge_plan('t', {'method': 'ties_dare_study', 'params': {'drop': 0.1}}, 4); "
            "expand_merges({'s': {'method': 'sce_study'}}); "
            "assert 'torch' not in sys.modules and 'mergekit' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ shape rules of the package
def _modules():
    return sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_module_shape(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 300, "module over 300 lines"
    tree = ast.parse(text)
    doc = ast.get_docstring(tree)
    assert doc and doc.splitlines()[0].strip(), "module docstring must say in one line what it holds"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{node.name} is {length} lines"


def test_no_import_cycles():
    graph = {}
    for path in _modules():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mixmerge.merging"):
                deps.add(node.module.split(".")[2] if node.module.count(".") >= 2 else None)
                if node.module == "mixmerge.merging":
                    deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[2] for a in node.names if a.name.startswith("mixmerge.merging."))
        graph[path.stem] = {d for d in deps if d and d != path.stem}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(trail + [node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph.get(node, ()):
            visit(dep, trail + [node])
        state[node] = 2

    for module in graph:
        visit(module, [])
