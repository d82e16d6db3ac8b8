"""The package's shape: modules by stage with no import circle, short modules and functions, and every config
key the schema allows is read somewhere."""
import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "mixmerge"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# Named exceptions, each with its reason.
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS: dict[str, str] = {}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every mixmerge module ``name`` imports, at top level or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in known and m != name}


def test_no_import_circle():
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    # A package's __init__ is imported with any of its modules; an edge into a package is an edge into its init.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name)


def test_every_module_says_what_it_holds():
    for name, path in modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{name} has no docstring"


def test_modules_and_functions_are_short():
    long_modules, long_functions = [], []
    for name, path in modules().items():
        rel = str(path.relative_to(PACKAGE))
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and rel not in LONG_MODULES:
            long_modules.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                key = f"{rel}:{node.name}"
                if length > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                    long_functions.append(f"{key}: {length} lines")
    assert not long_modules and not long_functions, long_modules + long_functions


def schema_keys(schema: dict, prefix: str = "") -> set[str]:
    """Dotted names of every key the schema declares (a pass-through block counts as one key)."""
    keys = set()
    for name, sub in (schema.get("properties") or {}).items():
        keys.add(f"{prefix}{name}")
        if name != "trl":
            keys |= schema_keys(sub, f"{prefix}{name}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        keys |= schema_keys(extra, f"{prefix}*.")
    return keys


def test_every_schema_key_is_read_somewhere():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    code = "\n".join(p.read_text() for p in [*PACKAGE.rglob("*.py"), *(REPO / "workflow").rglob("*.smk")])
    unread = []
    for key in sorted(schema_keys(schema)):
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "*":
            continue
        # read as a subscript/get/keyword
        # (or as a dataclass field filled by ``**block``)
        pattern = rf"""["']{re.escape(leaf)}["']|\b{re.escape(leaf)}=|\[{re.escape(leaf)}\]|^    {re.escape(leaf)}: """
        if not re.search(pattern, code, re.M):
            unread.append(key)
    assert not unread, f"schema keys no code reads: {unread}"
