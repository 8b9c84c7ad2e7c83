"""The layout's rules, read from the source with ``ast``: no import cycles, and the layers import only downwards."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reelflow", "flows", "tasks", "blocks")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module ``module`` imports, at any depth of its code (a function's own imports count too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def import_graph() -> dict[str, set[str]]:
    return {module: {name for name in _imported(module, path) if name in MODULES and name != module}
            for module, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _third_party(module: str) -> set[str]:
    return {name.split(".")[0] for name in _imported(module, MODULES[module]) if name.split(".")[0] not in PACKAGES}


@pytest.mark.parametrize("layer", ["reelflow.core", "reelflow.providers", "reelflow.storage"])
def test_plain_layers_never_import_prefect_or_the_store(layer: str) -> None:
    offenders = {module: sorted(names) for module in MODULES if module.startswith(layer)
                 if (names := ({"prefect", "prefect_aws"} & _third_party(module))
                     | {n for n in import_graph()[module] if n.startswith(("reelflow.store", "flows", "tasks"))})}
    assert not offenders, f"{layer} must stay free of Prefect and the store: {offenders}"


def test_at_most_six_modules_at_the_top_of_reelflow() -> None:
    top = sorted(path.name for path in (ROOT / "reelflow").glob("*.py"))
    assert len(top) <= 6, top


def test_prefect_yaml_declares_the_names_the_code_uses() -> None:
    import yaml

    from reelflow.orchestration.deployments import BATCH_DEPLOYMENT, VIDEO_DEPLOYMENT, WORK_POOL

    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    names = {f"{d['entrypoint'].rpartition(':')[2]}/{d['name']}": d for d in declared["deployments"]}
    assert {VIDEO_DEPLOYMENT, BATCH_DEPLOYMENT} <= set(names)
    assert {names[n]["work_pool"]["name"] for n in (VIDEO_DEPLOYMENT, BATCH_DEPLOYMENT)} == {WORK_POOL}
