"""The layers of ARCHITECTURE.md, held against the code: what each package may import, no import
circle anywhere, and the size limits (no function over 80 lines, no module over 500).

Imports are read from the source (ast), including those inside functions: a lazy import is still a
dependency, and a circle through one is still a circle.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "vljepa_ros"
FOUNDATION = {"vljepa_ros", "errors", "paths", "ros_distro"}
GENERATED = {"msg", "srv"}  # the ROS interfaces rosidl generates
# layer -> the layers it may import (besides itself and the foundation). ARCHITECTURE.md draws the same.
ALLOWED: dict[str, set[str]] = {
    "stream": set(),
    "model": {"stream"},
    "runtime": {"model", "stream"},
    "world": {"model", "stream"},
    "evaluation": {"model", "runtime", "stream", "world"},
    "nodes": {"model", "runtime", "stream", *GENERATED},
    "commands": {"model", "runtime", "stream", "world", "evaluation", "nodes", *GENERATED},
    "cli": {"commands"},
}
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vljepa_ros"


def is_module(name: str) -> bool:
    path = PACKAGE_ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> set[str]:
    """Every vljepa_ros module `path` imports, relative imports resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import submodule` depends on the submodule, `from module import name` on the module
            found.update(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base for alias in node.names)
    return {name for name in found if name == "vljepa_ros" or name.startswith("vljepa_ros.")}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) - {module_name(path)} for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def test_each_layer_imports_only_the_layers_below_it():
    violations = []
    for module, imports in import_graph().items():
        layer = layer_of(module)
        allowed = FOUNDATION | ALLOWED.get(layer, set()) | {layer}
        if layer in FOUNDATION:
            allowed = FOUNDATION
        for target in sorted(imports):
            if layer_of(target) not in allowed:
                violations.append(f"{module} imports {target} ({layer} -> {layer_of(target)})")
    assert not violations, "imports against the layers of ARCHITECTURE.md:\n" + "\n".join(violations)


def test_no_import_circles():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"


def test_the_rule_checker_sees_a_violation_and_a_circle(tmp_path, monkeypatch):
    """The checks above would fail on a bad tree (so a passing run means something)."""
    package = tmp_path / "vljepa_ros"
    (package / "nodes").mkdir(parents=True)
    (package / "world").mkdir()
    (package / "__init__.py").write_text("")
    (package / "nodes" / "__init__.py").write_text("")
    (package / "world" / "__init__.py").write_text("")
    (package / "nodes" / "a.py").write_text("def f():\n    from vljepa_ros.world import b\n")
    (package / "world" / "b.py").write_text("from vljepa_ros.nodes import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_ROOT", package)
    with pytest.raises(AssertionError, match="nodes -> world"):
        test_each_layer_imports_only_the_layers_below_it()
    with pytest.raises(AssertionError, match="circles"):
        test_no_import_circles()


def test_no_long_functions_or_modules():
    too_long = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE_ROOT.parent)}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, (f"over {MAX_MODULE_LINES} lines a module / {MAX_FUNCTION_LINES} a function "
                          "(split along a seam):\n" + "\n".join(too_long))


def test_building_the_command_line_imports_neither_torch_nor_rosbags():
    """`vljepa-ros --help` (and every sub-command's parser) stays fast: heavy imports wait for run()."""
    import subprocess
    code = ("import sys; from vljepa_ros.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'rosbags', 'cv2', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=PACKAGE_ROOT.parent, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
