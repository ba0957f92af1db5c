"""The package's imports run one way: no module imports itself back through others, no layer imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import ernerf_ns

PACKAGE = Path(ernerf_ns.__file__).parent
LAYERS = (
    {"errors", "stages", "optimizers", "saved_config"},
    {"layout", "audio", "face", "fields"},
    {"data", "metrics"},
    {"models"},
    {"pipeline", "trainer", "process", "synthetic", "portrait_pasteback", "in_process"},
    {"config", "render_video", "live"},
)
"""Bottom first: a module imports from its own layer or lower ones (file formats and face models below the data
and metrics that read them, the model above its fields, the commands on top)."""


def _modules() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules `path` imports at run time (imports under `if TYPE_CHECKING:` do not run)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ernerf_ns"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & modules.keys()


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def test_every_module_has_a_layer():
    tops = {name.split(".")[1] for name in _modules() if "." in name}
    assert tops <= set().union(*LAYERS), tops - set().union(*LAYERS)


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, targets in _graph().items() for b in targets if "." in a and _layer(b) > _layer(a)]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert cycles == []
