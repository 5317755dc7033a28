"""The package's layout and import graph, read from the source (docs/ARCHITECTURE.md).

At most six modules at the top; no import cycle; the library never imports the
command line (cli/) or the benchmarks; nothing under serving/ or evaluation/
imports training/, and runs/ (below all three) imports none of them; data/ and
models/ never take a whole Config; and a project import inside a function only
where the module says why (the list below).
"""

from __future__ import annotations

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pix2pix_tf")

# Modules that are command-line code themselves: cli/, the benchmarks, the
# `python -m pix2pix_tf.<name>` shims and the packages' __main__ modules.
COMMAND_LINE = ("pix2pix_tf.cli", "pix2pix_tf.benchmark")
SHIMS = ("pix2pix_tf.prepare", "pix2pix_tf.segmentation", "pix2pix_tf.serving_client")

# Project imports inside functions in library modules, and why each stays there.
INNER_IMPORTS = {
    # The demo serves a TF Serving model without importing TensorFlow at all; only
    # the paths that use a local model import the serving and data modules.
    "pix2pix_tf.demo.backend": "TensorFlow-free demo",
    "pix2pix_tf.demo.server": "TensorFlow-free demo",
}


def _module_name(path: str) -> str:
    relative = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")]
    name = relative.replace(os.sep, ".")
    return name.removesuffix(".__init__")


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for directory, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path) as file:
                    modules[_module_name(path)] = ast.parse(file.read(), path)
    return modules


MODULES = _modules()


def _imported(node: ast.AST) -> list[str]:
    """The project modules an import statement names (a name that is a module: it)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("pix2pix_tf")]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if not node.module.startswith("pix2pix_tf"):
            return []
        found = []
        for alias in node.names:
            candidate = f"{node.module}.{alias.name}"
            found.append(candidate if candidate in MODULES else node.module)
        return found
    return []


def _imports(tree: ast.Module, *, inner: bool) -> set[str]:
    """Project modules imported at module level (inner=False) or inside functions."""
    in_functions = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for sub in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if (id(node) in in_functions) == inner:
            found.update(_imported(node))
    return found


def _is_library(name: str) -> bool:
    command_line = name.startswith(COMMAND_LINE) or name in SHIMS
    return not command_line and not name.endswith(".__main__")


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_at_most_six_modules_at_the_top():
    top = [name for name in os.listdir(PACKAGE) if name.endswith(".py")]
    assert len(top) <= 6, sorted(top)


def test_no_import_cycle():
    graph = {name: _imports(tree, inner=False) - {name} for name, tree in MODULES.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target] if target in path else [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize(
    "importer, forbidden",
    [
        ("library", "pix2pix_tf.cli"),
        ("library", "pix2pix_tf.benchmark"),
        ("pix2pix_tf.serving", "pix2pix_tf.training"),
        ("pix2pix_tf.evaluation", "pix2pix_tf.training"),
        ("pix2pix_tf.runs", "pix2pix_tf.training"),
        ("pix2pix_tf.runs", "pix2pix_tf.serving"),
        ("pix2pix_tf.runs", "pix2pix_tf.evaluation"),
        ("pix2pix_tf.serving", "pix2pix_tf.evaluation"),
        ("pix2pix_tf.data", "pix2pix_tf.models"),
        ("pix2pix_tf.models", "pix2pix_tf.data"),
        ("pix2pix_tf.configs", "pix2pix_tf.models"),
    ],
)
def test_dependencies_point_one_way(importer, forbidden):
    offenders = []
    for name, tree in MODULES.items():
        owned = _is_library(name) if importer == "library" else _under(name, importer)
        if not owned:
            continue
        imported = _imports(tree, inner=False) | _imports(tree, inner=True)
        offenders += [f"{name} imports {t}" for t in sorted(imported) if _under(t, forbidden)]
    assert not offenders


def test_project_imports_inside_functions_only_where_listed():
    found = {
        name for name, tree in MODULES.items() if _is_library(name) and _imports(tree, inner=True)
    }
    assert found == set(INNER_IMPORTS), found ^ set(INNER_IMPORTS)


def test_a_cycle_and_a_forbidden_import_are_found():
    """The scan itself: an import inside a function and one of a name that is a module."""
    tree = ast.parse(
        "from pix2pix_tf.data import pipeline\ndef f():\n    from pix2pix_tf.cli import flags\n"
    )
    assert _imports(tree, inner=False) == {"pix2pix_tf.data.pipeline"}
    assert _imports(tree, inner=True) == {"pix2pix_tf.cli.flags"}
