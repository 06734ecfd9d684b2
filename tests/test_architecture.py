"""The shape of ``localaws/``, read from its source (DESIGN.md, "Stand-in principles").

- Every service is a package ``localaws/<service>/`` with ``api.py`` (its
  ``<Service>Plane``, listed in ``localaws/stack.py``), ``engine.py`` and
  ``errors.py``; every other package is shared plumbing (``core``, ``data``).
- Services never import each other, nor the stack's front door.
- ``core/`` imports no other part of localaws.
- No import cycle, counting imports inside functions too.
- A plane's ``api.py`` imports no moto module at load time (the registry
  imports moto lazily, on the first request for the service).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from localaws.core.errors import AWSError
from localaws.core.plane import Plane
from localaws.stack import PLANES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "localaws"
SHARED = {"core", "data", "capstone"}   # capstone: client code (boto3) wiring the services, no plane


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The localaws modules (and moto modules) ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith(("localaws", "moto"))}


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def known(name: str, mods: dict[str, Path]) -> str | None:
    """The module ``name`` refers to (``localaws.x.y.func`` -> ``localaws.x.y``)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def area(module: str) -> str:
    """``localaws.athena.engine`` -> ``athena``; ``localaws.pricing`` -> ``pricing``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


SERVICES = sorted({p.__module__.split(".")[1] for p in PLANES})


def test_every_service_package_has_the_one_shape():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert sorted(set(packages) - SHARED) == SERVICES, "a package that is neither a service nor shared"
    for service in SERVICES:
        for required in ("api.py", "engine.py", "errors.py"):
            assert (PACKAGE / service / required).exists(), f"localaws/{service}/{required} is missing"
    for plane in PLANES:
        assert issubclass(plane, Plane) and plane.__name__.endswith("Plane")
        assert plane.__module__ == f"localaws.{plane.name}.api", plane
        assert plane.services, f"{plane.__name__} serves no boto3 client"


@pytest.mark.parametrize("service", SERVICES)
def test_errors_are_one_class_per_code(service):
    import importlib
    errors = importlib.import_module(f"localaws.{service}.errors")
    classes = [v for v in vars(errors).values()
               if isinstance(v, type) and issubclass(v, AWSError) and v.__module__ == errors.__name__]
    for cls in classes:
        assert cls.code == cls.__name__ or "code" in cls.__dict__, cls


def test_services_import_no_other_service_and_not_the_front_door():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        here = area(name)
        if here not in SERVICES:
            continue
        for target in imports(path):
            target = known(target, mods)
            if target is None:
                continue
            there = area(target)
            if there in SERVICES and there != here and not is_client_helper(target):
                wrong.append(f"{name} imports {target}")
            if target in ("localaws", "localaws.stack"):
                wrong.append(f"{name} imports the front door {target}")
    assert not wrong, wrong


def is_client_helper(module: str) -> bool:
    """``localaws.<service>.client``: the learner's side of a service, boto3 only (Athena's
    ``run_query``), which works on AWS too. Lab checks of another service may use it."""
    parts = module.split(".")
    return len(parts) == 3 and parts[2] == "client"


def test_client_helpers_use_boto3_and_core_only():
    mods = modules()
    wrong = [f"{name} imports {target}" for name, path in mods.items() if is_client_helper(name)
             for target in map(lambda t: known(t, mods), imports(path))
             if target and target != "localaws" and area(target) not in ("core", area(name))
             or target and area(target) == area(name) and target != name]
    assert not wrong, wrong


def test_core_imports_nothing_but_core():
    mods = modules()
    wrong = [f"{name} imports {target}" for name, path in mods.items() if area(name) == "core"
             for target in map(lambda t: known(t, mods), imports(path))
             if target and target != "localaws" and area(target) != "core"]
    assert not wrong, wrong


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    mods = modules()
    graph = {}
    for name, path in mods.items():
        targets = {known(t, mods) for t in imports(path)} - {None, name}
        # A package's __init__ is imported on the way to any of its modules: not an edge back.
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("service", SERVICES)
def test_plane_modules_load_without_moto(service):
    """api.py (and what it imports at load time) must not import moto: hooks name it lazily."""
    mods = modules()
    seen, todo = set(), [f"localaws.{service}.api"]
    while todo:
        name = todo.pop()
        if name in seen or name not in mods:
            continue
        seen.add(name)
        direct = imports(mods[name], top_level_only=True)
        moto = sorted(t for t in direct if t.startswith("moto"))
        assert not moto, f"{name} imports {moto} at load time"
        todo.extend(t for t in (known(x, mods) for x in direct) if t and area(t) == service)
