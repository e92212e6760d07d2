"""The layering rules of docs/architecture.md, checked on the source and on a fresh interpreter."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "open_clip", "pybullet")

#: layer -> (its modules, the layers or modules it may import besides its own layer).
#: docs/architecture.md shows the same table; test_the_architecture_page_shows_these_layers keeps them equal.
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "core": (("fmrobot.types", "fmrobot.errors", "fmrobot.interfaces", "fmrobot.registry", "fmrobot.assets",
              "fmrobot.paths", "fmrobot.cache", "fmrobot.colors", "fmrobot.hub", "fmrobot.provenance",
              "fmrobot.security"), ("core",)),
    "data": (("fmrobot.data",), ("core",)),
    "llm": (("fmrobot.llm",), ("core",)),
    "components": (("fmrobot.perception", "fmrobot.planning", "fmrobot.control", "fmrobot.safety",
                    "fmrobot.faults", "fmrobot.responders", "fmrobot.success_detection"), ("core", "data", "llm")),
    "execution": (("fmrobot.runner", "fmrobot.trace", "fmrobot.outputs", "fmrobot.resume", "fmrobot.testing",
                   "fmrobot.viz"),
                  ("core", "data", "llm", "components")),
    "builder": (("fmrobot.stack", "fmrobot.execution", "fmrobot.compose", "fmrobot.cli", "fmrobot.help",
                 "fmrobot.hints"), ("core", "data", "llm", "components", "execution")),
    "commands": (("fmrobot.run", "fmrobot.collect", "fmrobot.train", "fmrobot.replay", "fmrobot.view",
                  "fmrobot.viewer"),
                 ("core", "data", "llm", "components", "execution", "builder")),
    "sims": (("sims",), ("fmrobot.types", "fmrobot.errors", "fmrobot.registry", "fmrobot.faults")),
    "benchmarks": (("benchmarks",), ("core", "data", "llm", "components", "execution", "builder", "commands",
                                     "sims")),
}


def _imports(path: Path) -> set[str]:
    """Every absolute import in the file, lazy ones included; `from fmrobot import registry` counts as
    fmrobot.registry."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module in ("fmrobot", "benchmarks", "sims"):
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _unit(module: str) -> str | None:
    """The table's module a dotted name belongs to (fmrobot.planning for fmrobot.planning.llm_goal)."""
    parts = module.split(".")
    if parts[0] in ("sims", "benchmarks"):
        return parts[0]
    return ".".join(parts[:2]) if parts[0] == "fmrobot" and len(parts) > 1 else None


def _layer_of() -> dict[str, str]:
    return {module: layer for layer, (modules, _) in LAYERS.items() for module in modules}


def _allowed(layer: str) -> set[str]:
    modules, may_import = LAYERS[layer]
    allowed = set(modules)
    for item in may_import:
        allowed.update(LAYERS[item][0] if item in LAYERS else (item,))
    return allowed


def _sources() -> list[Path]:
    return [p for root in ("fmrobot", "sims", "benchmarks") for p in (ROOT / root).rglob("*.py")]


def test_every_module_is_in_one_layer():
    layer_of = _layer_of()
    units = {_unit(".".join(p.relative_to(ROOT).with_suffix("").parts)) for p in _sources()}
    units -= {None, "fmrobot.__init__"}
    assert units <= set(layer_of), f"not in any layer of docs/architecture.md: {sorted(units - set(layer_of))}"


@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_imports_only_what_its_row_allows(layer):
    layer_of, allowed = _layer_of(), _allowed(layer)
    for path in _sources():
        here = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if layer_of.get(here or "") != layer:
            continue
        used = {_unit(m) for m in _imports(path)} - {None, here}
        assert used <= allowed, f"{path.relative_to(ROOT)} ({layer}) imports {sorted(used - allowed)}"


def test_the_architecture_page_shows_these_layers():
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in LAYERS:
            modules = tuple(re.findall(r"`([\w.]+)`", cells[1]))
            may_import = tuple(re.findall(r"`?([\w.]+)`?", cells[2]))
            rows[cells[0]] = (modules, may_import)
    assert rows == LAYERS


def test_the_rules_catch_an_import_against_the_layers(tmp_path):
    # The check is not vacuous: a data module importing control breaks it.
    bad = tmp_path / "bad.py"
    bad.write_text("from fmrobot.control.skills import PICK\nfrom fmrobot import stack\n")
    used = {_unit(m) for m in _imports(bad)} - {None}
    assert used - _allowed("data") == {"fmrobot.control", "fmrobot.stack"}


def test_importing_fmrobot_and_its_core_loads_no_heavy_library():
    code = (
        "import sys, fmrobot, fmrobot.types, fmrobot.interfaces, fmrobot.registry, fmrobot.runner, "
        "fmrobot.stack, fmrobot.testing\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_fmrobot_never_imports_the_simulator_or_the_benchmarks():
    for path in (ROOT / "fmrobot").rglob("*.py"):
        bad = {m for m in _imports(path) if m.split(".")[0] in ("sims", "pybullet", "pybullet_data", "benchmarks")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_bottom_modules_import_only_the_bottom():
    bottom = {"fmrobot.types", "fmrobot.errors"}
    # The fault base sims builds on may also name the Protocols it implements.
    for name, allowed in (("types.py", bottom), ("interfaces.py", bottom), ("errors.py", bottom),
                          ("faults/__init__.py", bottom | {"fmrobot.interfaces"})):
        used = {m for m in _imports(ROOT / "fmrobot" / name) if m.startswith("fmrobot.")}
        assert used <= allowed, f"fmrobot/{name} imports {used}"
