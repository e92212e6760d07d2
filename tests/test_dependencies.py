"""The layering rules of DESIGN.md, checked on the source and on a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "open_clip", "pybullet")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_importing_fmrobot_and_its_core_loads_no_heavy_library():
    code = (
        "import sys, fmrobot, fmrobot.types, fmrobot.interfaces, fmrobot.registry, fmrobot.runner, "
        "fmrobot.stack, fmrobot.testing\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_fmrobot_never_imports_the_simulator():
    for path in (ROOT / "fmrobot").rglob("*.py"):
        bad = {m for m in _imports(path) if m.split(".")[0] in ("sims", "pybullet", "pybullet_data")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_sims_depends_on_fmrobot_types_only():
    # Leaves that import nothing else of fmrobot: errors (the simulator raises SimulationError
    # for a physics blow-up) and the fault base (one seeded generator and event log for every fault).
    allowed = {"fmrobot.types", "fmrobot.errors", "fmrobot.faults"}
    for path in (ROOT / "sims").rglob("*.py"):
        used = {m for m in _imports(path) if m.split(".")[0] == "fmrobot"}
        assert used <= allowed, f"{path.relative_to(ROOT)} imports {used - allowed}"


def test_core_modules_do_not_import_components():
    for name in ("types.py", "interfaces.py", "errors.py", "faults/__init__.py"):  # and the fault base sims builds on
        used = {m for m in _imports(ROOT / "fmrobot" / name) if m.startswith("fmrobot.")}
        assert used <= {"fmrobot.types", "fmrobot.errors"}, f"fmrobot/{name} imports {used}"
