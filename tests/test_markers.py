"""The fast tier (`pytest -m "not slow"`) stays fast: a test that pip-installs or starts Ray is marked slow.

Read from the test sources: a test reaches what its body, the functions of its module (and of the tests
modules it imports from) and its fixtures (its module's and its conftest.py files') do. Not checked: runs of
`python -m fmrobot.run` in a subprocess, since the cheap ones (a bad override, refused in a second) are the
fast tier's coverage of the command line and nothing in the source tells them from a run of the default stack.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
RAY_FIXTURES = {"ray_instance"}  # tests/execution/conftest.py: a local Ray for the module


class Module:
    """A test module's top-level functions (helpers, fixtures, tests) and the names it imports from tests.*"""

    def __init__(self, source: str, name: str = "<test module>"):
        self.tree = ast.parse(source, name)
        self.functions = {n.name: n for n in self.tree.body if isinstance(n, ast.FunctionDef)}
        self.imported = {alias.asname or alias.name: (node.module, alias.name) for node in self.tree.body
                         if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.")
                         for alias in node.names}
        self.module_slow = any(isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                                    for t in node.targets)
                               and _names_slow(node.value) for node in self.tree.body)

    def fixtures(self) -> dict[str, ast.FunctionDef]:
        return {name: f for name, f in self.functions.items() if any(_is_fixture(d) for d in f.decorator_list)}


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "fixture"


def _names_slow(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "slow" and isinstance(n.value, ast.Attribute)
               and n.value.attr == "mark" for n in ast.walk(node))


def _direct_reasons(function: ast.FunctionDef) -> set[str]:
    """What this function's own code does that belongs in the slow tier."""
    reasons = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.List, ast.Tuple)):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if "pip" in words and "install" in words[words.index("pip"):]:
                reasons.add("pip-installs")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "init" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "ray":
            reasons.add("starts Ray")
    return reasons


class Suite:
    """Test modules by path, to follow a test into helpers, imported helpers and fixtures."""

    def __init__(self, root: Path = TESTS):
        self.root = root
        self.modules: dict[Path, Module] = {}

    def module(self, path: Path) -> Module:
        if path not in self.modules:
            self.modules[path] = Module(path.read_text(), str(path))
        return self.modules[path]

    def _conftest_fixtures(self, path: Path) -> dict[str, tuple[Path, ast.FunctionDef]]:
        found = {}
        folder = path.parent
        while True:
            conftest = folder / "conftest.py"
            if conftest.is_file():
                for name, f in self.module(conftest).fixtures().items():
                    found.setdefault(name, (conftest, f))  # the nearest conftest wins
            if folder == self.root:
                return found
            folder = folder.parent

    def reasons(self, path: Path, function: ast.FunctionDef, module: Module | None = None,
                seen: set | None = None) -> set[str]:
        """Why `function` of the module at `path` (or of `module`, a source not on disk) belongs in the slow tier."""
        module = module or self.module(path)
        seen = set() if seen is None else seen
        if (path, function.name) in seen:
            return set()
        seen.add((path, function.name))
        reasons = _direct_reasons(function)
        fixtures = {name: (path, f) for name, f in module.fixtures().items()}
        for name, found in self._conftest_fixtures(path).items():
            fixtures.setdefault(name, found)
        for arg in (a.arg for a in function.args.args):
            if arg in RAY_FIXTURES:
                reasons.add("starts Ray")
            elif arg in fixtures and fixtures[arg][1] is not function:
                where, fixture = fixtures[arg]
                reasons |= self.reasons(where, fixture, module if where == path else None, seen)
        called = {n.func.id for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        for name in called:
            if name in module.functions and name != function.name:
                reasons |= self.reasons(path, module.functions[name], module, seen)
            elif name in module.imported:
                dotted, original = module.imported[name]
                source = self.root.parent / (dotted.replace(".", "/") + ".py")
                if source.is_file() and original in self.module(source).functions:
                    reasons |= self.reasons(source, self.module(source).functions[original], None, seen)
        return reasons

    def unmarked(self, path: Path, module: Module | None = None) -> list[str]:
        """Tests of the module that pip-install or start Ray and are not marked slow, with the reason."""
        module = module or self.module(path)
        if module.module_slow:
            return []
        out = []
        for name, function in module.functions.items():
            if name.startswith("test_") and not any(_names_slow(d) for d in function.decorator_list):
                reasons = self.reasons(path, function, module)
                if reasons:
                    out.append(f"{path.relative_to(self.root.parent)}::{name} ({', '.join(sorted(reasons))})")
        return out


def test_tests_that_pip_install_or_start_ray_are_marked_slow():
    suite = Suite()
    unmarked = [line for path in sorted(TESTS.rglob("test_*.py")) if "plugin_example" not in path.parts
                for line in suite.unmarked(path)]
    assert unmarked == [], "mark these @pytest.mark.slow:\n" + "\n".join(unmarked)


def test_the_check_follows_helpers_and_fixtures_and_accepts_a_slow_mark(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "import pytest, ray\n\n@pytest.fixture\ndef cluster():\n    ray.init()\n    yield\n")
    source = '''
import subprocess, sys
import pytest

def _install(site):
    subprocess.run([sys.executable, "-m", "pip", "install", "--target", site, "pkg"], check=True)

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return _install(tmp_path_factory.mktemp("site"))

def test_runs_the_plugin(site):
    pass

@pytest.mark.slow
def test_runs_the_plugin_slowly(site):
    pass

def test_on_a_cluster(cluster):
    pass

def test_on_ray(ray_instance):
    pass

def test_names_pip_in_a_config_only():
    assert "{pip: [some-package]}"
'''
    path = tmp_path / "test_example.py"
    path.write_text(source)
    suite = Suite(tmp_path)
    where = f"{tmp_path.name}/test_example.py"
    assert suite.unmarked(path) == [f"{where}::test_runs_the_plugin (pip-installs)",
                                    f"{where}::test_on_a_cluster (starts Ray)", f"{where}::test_on_ray (starts Ray)"]
    path.write_text("import pytest\npytestmark = [pytest.mark.slow]\n" + source)
    assert Suite(tmp_path).unmarked(path) == []
