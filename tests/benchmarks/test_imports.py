"""Every import the benchmark scripts make of the project's own modules resolves.

The scripts run by hand (`python -m benchmarks.<script>`), mostly with imports inside their
functions, so a rename elsewhere breaks them silently until someone runs them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = ("benchmarks", "fmrobot", "sims")
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").rglob("*.py") if "__pycache__" not in p.parts)
SIBLINGS = {p.stem for p in (ROOT / "benchmarks").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}


def _own_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) for each import of a project module in `path`."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative imports are not the house style here
            found.append((node.lineno, "." * node.level + (node.module or ""), None))
    return found


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_benchmark_script_imports_resolve(path: Path) -> None:
    broken = []
    for line, module, name in _own_imports(path):
        top = module.split(".")[0]
        if module.startswith(".") or top in SIBLINGS:  # works only when run from inside benchmarks/
            broken.append(f"line {line}: {module} is a benchmark module: import it as benchmarks.{module.lstrip('.')}")
            continue
        if top not in OWN:  # third-party, maybe an optional extra that is not installed here
            continue
        try:
            imported = importlib.import_module(module)
        except ImportError as error:
            broken.append(f"line {line}: {module}: {error}")
            continue
        if name is not None and name != "*" and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                broken.append(f"line {line}: {module} has no {name}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)
