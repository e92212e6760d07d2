"""Security: secrets stay in the environment, configs cannot run code, model output is only text.

The acceptance test runs `python -m fmrobot.run` end to end against a fake
OpenAI-compatible server on loopback with an API key in the environment, and then reads
every file the run wrote (and its stdout and stderr) for the key.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from fmrobot import registry, security
from fmrobot.errors import ConfigError, LanguageModelError, PlanningError
from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM, _chosen_option
from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner
from fmrobot.testing import synthetic_context, synthetic_scene
from tests.fakes import LoopbackServer, ScriptedLM, chat_reply, compose_config, read_json, run_command, send_json

ROOT = Path(__file__).resolve().parents[1]
PYBULLET_BANNER = re.compile(r"^pybullet build time: ")  # pybullet's C code prints it on import


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not PYBULLET_BANNER.match(line)]


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "fmrobot.run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=environment, check=False)


# --------------------------------------------------------------------------- a fake OpenAI-compatible server


class FakeOpenAI(LoopbackServer):
    """An OpenAI-compatible chat endpoint on loopback that writes a pick-and-place plan from the prompt.

    `expected_key`: requests must carry `Authorization: Bearer <key>`; others get 401 with a body
    that quotes the key they presented, as careless servers do (the worst case for leaks).
    """

    def __init__(self, expected_key: str | None = None):
        super().__init__()
        self.expected_key = expected_key
        self.authorizations: list[str | None] = []

    def handle_post(self, request) -> None:
        body = read_json(request)
        presented = request.headers.get("Authorization")
        self.authorizations.append(presented)
        if self.expected_key is not None and presented != f"Bearer {self.expected_key}":
            return send_json(request, 401, {"error": {"message": f"Incorrect API key provided: {presented}",
                                                      "type": "invalid_request_error"}})
        if not request.path.endswith("/chat/completions"):
            return send_json(request, 404, {"error": {"message": "not here"}})
        send_json(request, 200, chat_reply(self.plan(body["messages"][-1]["content"]),
                                           usage={"prompt_tokens": 10, "completion_tokens": 10}))

    @staticmethod
    def plan(prompt: str) -> str:
        """Pick the first perceived object the instruction names, place it on the second."""
        objects = re.search(r"Objects: (.*)", prompt).group(1).split(", ")
        instruction = re.search(r"Instruction: (.*)", prompt).group(1).lower()
        named = sorted((instruction.find(o), o) for o in objects if o in instruction)
        chosen = [o for _, o in named][:2] or objects[:2]
        return json.dumps({"steps": [{"skill": "pick", "args": {"object": chosen[0]}},
                                     {"skill": "place", "args": {"target": chosen[-1]}}]})


def files_holding(folder: Path, secret: str) -> list[str]:
    """Every file under `folder` (hidden ones included) whose bytes hold `secret`."""
    needle = secret.encode()
    return [str(p.relative_to(folder)) for p in sorted(folder.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def openai_run(tmp_path: Path, server: FakeOpenAI, secret: str, *extra: str):
    run_dir = tmp_path / "run"
    done = run_cli("task=pick_place", "perception=oracle", "planner=llm_structured", "llm=openai",
                   f"llm.base_url={server.base_url}", "llm.model=fake-model", "llm.retries=0", "episodes=2",
                   "video=first", f"hydra.run.dir={run_dir}", *extra, cwd=tmp_path,
                   env={"OPENAI_API_KEY": secret})
    return done, run_dir


def test_an_api_key_in_the_environment_appears_in_no_file_the_run_writes(tmp_path):
    secret = f"sk-fmrobot-{secrets.token_hex(16)}"
    with FakeOpenAI(expected_key=secret) as server:
        done, run_dir = openai_run(tmp_path, server, secret)
    assert done.returncode == 0, done.stderr[-3000:]
    # The key did reach the server, so the run really held it ...
    assert server.authorizations and set(server.authorizations) == {f"Bearer {secret}"}
    results = json.loads((run_dir / "results.json").read_text())
    assert results["summary"]["episodes"] == 2 and results["summary"]["successes"] >= 1
    assert results["config"]["llm"]["api_key_env"] == "OPENAI_API_KEY"
    written = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    assert {"results.json", ".hydra/config.yaml", ".hydra/overrides.yaml", "run.log",
            "traces/seed_000000.jsonl", "videos/seed_000000.mp4"} <= written
    # ... and wrote it nowhere.
    assert files_holding(run_dir, secret) == []
    assert secret not in done.stdout and secret not in done.stderr


@pytest.mark.slow
def test_a_rejected_key_fails_the_episodes_cleanly_without_writing_the_key(tmp_path):
    secret = f"sk-fmrobot-{secrets.token_hex(16)}"
    with FakeOpenAI(expected_key="sk-the-server-wants-another-key") as server:
        done, run_dir = openai_run(tmp_path, server, secret)
    # A refused key fails the episodes in planning (exit status 4, fmrobot/run.py), not the run's config check.
    assert done.returncode == 4, done.stderr[-3000:]
    assert set(server.authorizations) == {f"Bearer {secret}"}
    episodes = json.loads((run_dir / "results.json").read_text())["episodes"]
    assert len(episodes) == 2 and not any(e["success"] for e in episodes)
    for episode in episodes:
        assert "HTTP 401" in episode["failure_reason"] and "<redacted>" in episode["failure_reason"]
    assert files_holding(run_dir, secret) == []
    assert secret not in done.stdout and secret not in done.stderr


def test_the_backend_blanks_a_key_the_server_quotes_back(monkeypatch, caplog):
    secret = f"sk-fmrobot-{secrets.token_hex(16)}"
    monkeypatch.setenv("FMROBOT_TEST_KEY", secret)
    with FakeOpenAI(expected_key="another") as server:
        lm = OpenAICompatibleLM(OpenAICompatibleConfig(base_url=server.base_url, model="m", retries=0,
                                                       api_key_env="FMROBOT_TEST_KEY"))
        with caplog.at_level("DEBUG"), pytest.raises(LanguageModelError) as raised:
            lm.generate([])
        with caplog.at_level("DEBUG"):
            assert lm._post("/completions", {}, refused=(401,)) is None  # the logged path
    assert "HTTP 401" in str(raised.value) and secret not in str(raised.value)
    assert "<redacted>" in caplog.text and secret not in caplog.text


# --------------------------------------------------------------------------- secrets in configs


def test_a_config_key_that_looks_like_a_secret_is_refused_without_showing_it():
    config = compose_config(["llm=openai", "+llm.api_key=sk-literal-key-123456"])
    with pytest.raises(ConfigError) as raised:
        security.check_config(config)
    message = str(raised.value)
    assert "llm.api_key has a key that looks like a secret" in message and "api_key_env" in message
    assert "sk-literal-key-123456" not in message


@pytest.mark.parametrize("key", ["max_tokens", "api_key_env", "max_new_tokens", "tokenizer", "json_schema"])
def test_ordinary_keys_are_not_taken_for_secrets(key):
    assert security.find_secrets({"llm": {key: "some value that is long"}}) == []


@pytest.mark.slow
def test_every_shipped_config_passes_the_secret_check(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "x" * 20)
    for name in ("run", "collect", "train"):
        security.check_config(compose_config([], name=name))
    for path in sorted((ROOT / "configs").glob("*/*.yaml")):
        if path.parent.name != "benchmark":  # suites, not run configs
            security.check_config(compose_config([f"{path.parent.name}={path.stem}"]))


def test_an_environment_secret_resolved_into_the_config_is_refused_and_its_copies_deleted(tmp_path, monkeypatch):
    secret = f"sk-fmrobot-{secrets.token_hex(16)}"
    monkeypatch.setenv("MY_LLM_CRED", secret)  # not a secret-looking name: named by the config instead
    config = {"llm": {"api_key_env": "MY_LLM_CRED", "model": f"prefix-{secret}"}}
    copy = tmp_path / "config.yaml"
    copy.write_text(f"llm:\n  model: prefix-{secret}\n")
    with pytest.raises(ConfigError) as raised:
        security.check_config(config, written=[copy, tmp_path / "missing.yaml"])
    assert "llm.model holds the value of the environment variable MY_LLM_CRED" in str(raised.value)
    assert secret not in str(raised.value)
    assert not copy.exists() and tmp_path.is_dir()  # a refused run keeps no copy of its config


def test_oc_env_interpolation_of_a_key_stops_the_run_before_anything_holds_it(tmp_path):
    secret = f"sk-fmrobot-{secrets.token_hex(16)}"
    run_dir = tmp_path / "run"
    done = run_command("llm=openai", "+llm.note=${oc.env:OPENAI_API_KEY}", f"hydra.run.dir={run_dir}", cwd=tmp_path,
                   env={"OPENAI_API_KEY": secret})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "llm.note holds the value of the environment variable OPENAI_API_KEY" in lines[0]
    assert files_holding(run_dir, secret) == [] and secret not in done.stdout + done.stderr
    assert not (run_dir / "results.json").exists()


def test_a_key_on_the_command_line_is_refused_before_hydra_writes_it(tmp_path):
    secret = f"sk-fmrobot-{secrets.token_hex(16)}"
    run_dir = tmp_path / "run"
    done = run_command("llm=openai", f"llm.model={secret}", f"hydra.run.dir={run_dir}", cwd=tmp_path,
                   env={"OPENAI_API_KEY": secret})
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "fmrobot: error: command-line argument 2 holds the value of the environment variable OPENAI_API_KEY; "
        "fmrobot reads secrets only from the environment: name the variable instead "
        "(for example llm.api_key_env=OPENAI_API_KEY)"]
    assert not run_dir.exists()


# --------------------------------------------------------------------------- configs cannot run code


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module `fmrobot_marker_mod` on sys.path that writes a file when imported and when its
    classes are built: proof of whether a config made fmrobot run it."""
    marker = tmp_path / "imported"
    (tmp_path / "fmrobot_marker_mod.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('imported')\n"
        "class Evil:\n"
        "    def __init__(self, *args, **kwargs):\n"
        f"        Path({str(marker)!r}).write_text('built')\n"
        "    def on_run_start(self, *args, **kwargs):\n"
        "        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fmrobot_marker_mod", raising=False)
    return marker


def test_target_names_only_classes(monkeypatch):
    monkeypatch.delenv(registry.UNTRUSTED_ENV, raising=False)
    for target in ("os.system", "subprocess.getoutput", "fmrobot.registry.available", "builtins.eval"):
        with pytest.raises(ConfigError, match="not a class"):
            registry.resolve("planner", {"_target_": target})
    with pytest.raises(ConfigError, match="not a dotted path"):
        registry.resolve("planner", {"_target_": "__import__('os').system('true')"})


def test_a_class_that_is_no_component_of_its_group_is_refused(monkeypatch):
    monkeypatch.delenv(registry.UNTRUSTED_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"planner 'collections.OrderedDict' .* is not a planner component: "
                                          r"it has no plan, replan"):
        registry.resolve("planner", {"_target_": "collections.OrderedDict"})


def test_untrusted_configs_restrict_targets_to_the_allow_list_before_importing(monkeypatch, marker_module):
    monkeypatch.setenv(registry.UNTRUSTED_ENV, "1")
    monkeypatch.delenv(registry.TRUSTED_ENV, raising=False)
    with pytest.raises(ConfigError) as raised:
        registry.resolve("planner", {"_target_": "fmrobot_marker_mod.Evil"})
    message = str(raised.value)
    assert "outside the allow-list for untrusted configs (FMROBOT_UNTRUSTED_CONFIG is set): " in message
    assert "fmrobot, " in message and "sims" in message and "FMROBOT_TRUSTED_TARGETS" in message
    assert "\n" not in message and not marker_module.exists()  # refused before the import ran its code
    # fmrobot's own classes still resolve, and a class re-exported by a trusted module is judged by its home.
    assert registry.resolve("perception", {"_target_": "fmrobot.perception.oracle.OraclePerceptor"}).cls
    with pytest.raises(ConfigError, match="defined outside the allow-list"):
        registry.resolve("planner", {"_target_": "fmrobot.registry.EntryPoint"})  # importlib.metadata's
    # Without the switch the same target is imported (what the allow-list exists to prevent).
    monkeypatch.delenv(registry.UNTRUSTED_ENV)
    with pytest.raises(ConfigError, match="is not a planner component"):
        registry.resolve("planner", {"_target_": "fmrobot_marker_mod.Evil"})
    assert marker_module.read_text() == "imported"


def test_the_allow_list_takes_plugin_entry_points_and_listed_prefixes(monkeypatch, marker_module):
    monkeypatch.setenv(registry.UNTRUSTED_ENV, "yes")
    plugin = EntryPoint(name="tiny", value="tiny_plugin.planner:TinyPlanner", group="fmrobot.planners")
    real = registry.entry_points

    def entry_points(group):
        return (*real(group=group), plugin) if group == "fmrobot.planners" else real(group=group)

    monkeypatch.setattr(registry, "entry_points", entry_points)
    assert "tiny_plugin.planner" in registry.trusted_modules()
    modules = registry.trusted_modules()  # outermost prefixes only: fmrobot covers fmrobot.planning.scripted
    assert {"fmrobot", "sims", "tiny_plugin.planner"} <= set(modules)
    assert not any(m.startswith(("fmrobot.", "sims.")) for m in modules)
    monkeypatch.setenv(registry.TRUSTED_ENV, " other_pkg , fmrobot_marker_mod")
    assert {"other_pkg", "fmrobot_marker_mod"} <= set(registry.trusted_modules())
    with pytest.raises(ConfigError, match="is not a planner component"):  # allowed now: imported and checked
        registry.resolve("planner", {"_target_": "fmrobot_marker_mod.Evil"})


def test_untrusted_cli_refuses_a_foreign_target_in_one_line(tmp_path):
    done = run_command("+planner._target_=collections.OrderedDict", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                   env={registry.UNTRUSTED_ENV: "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and lines[0].startswith("fmrobot: error: ")
    assert lines[0].startswith("fmrobot: error: planner._target_ names 'collections.OrderedDict', outside the "
                               "allow-list for untrusted configs (FMROBOT_UNTRUSTED_CONFIG is set): fmrobot, ")
    assert "sims" in lines[0] and "hydra._internal.core_plugins" in lines[0]


def test_untrusted_cli_refuses_hydra_callbacks_before_hydra_builds_them(tmp_path, marker_module):
    callback = "+hydra.callbacks.evil._target_=fmrobot_marker_mod.Evil"
    env = {"PYTHONPATH": f"{marker_module.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           registry.UNTRUSTED_ENV: "1"}
    done = run_command(callback, "episodes=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert done.returncode == 2 and not marker_module.exists()
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "hydra.callbacks.evil._target_ names 'fmrobot_marker_mod.Evil'" in lines[0]
    # Trusted (the default), Hydra does build it: the hole the check closes.
    env.pop(registry.UNTRUSTED_ENV)
    done = run_command(callback, "episodes=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert marker_module.read_text() == "built"


def test_untrusted_check_covers_config_folders_and_refuses_what_it_cannot_check(tmp_path, monkeypatch):
    from fmrobot.cli import check_untrusted_command

    monkeypatch.setenv(registry.UNTRUSTED_ENV, "1")
    (tmp_path / "level").mkdir()
    (tmp_path / "level" / "evil.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    evil:\n      _target_: fmrobot_marker_mod.Evil\n")
    (tmp_path / "planner").mkdir()
    (tmp_path / "planner" / "odd.yaml").write_text("_target_: collections.OrderedDict\n")
    check_untrusted_command("run", ["-cd", str(tmp_path), "perception=oracle"])  # nothing foreign: passes
    with pytest.raises(ConfigError, match="hydra.callbacks.evil._target_ names 'fmrobot_marker_mod.Evil'"):
        check_untrusted_command("run", ["--config-dir", str(tmp_path), "level=evil"])
    with pytest.raises(ConfigError, match="planner._target_ names 'collections.OrderedDict', outside"):
        check_untrusted_command("run", ["-cd", str(tmp_path), "planner=odd"])
    for refused in (["-m", "seed=1,2"], ["-cn", "evil"], ["--config-path", str(tmp_path)]):
        with pytest.raises(ConfigError, match="cannot be used with FMROBOT_UNTRUSTED_CONFIG set"):
            check_untrusted_command("run", refused)
    with pytest.raises(ConfigError, match="could not be composed: Could not find 'planner/nope'"):
        check_untrusted_command("run", ["planner=nope"])
    with pytest.raises(ConfigError, match="could not be composed: ValueError while composing the config"):
        check_untrusted_command("run", ["task=null"])


def test_untrusted_check_refuses_a_search_path_package_before_importing_it(tmp_path, monkeypatch, marker_module):
    from fmrobot.cli import check_untrusted_command

    monkeypatch.setenv(registry.UNTRUSTED_ENV, "1")
    with pytest.raises(ConfigError, match="hydra.searchpath names pkg://fmrobot_marker_mod, outside the allow-list"):
        check_untrusted_command("run", ["hydra.searchpath=[pkg://fmrobot_marker_mod]"])
    assert not marker_module.exists()
    check_untrusted_command("run", [f"hydra.searchpath=[file://{tmp_path}]"])  # folders of files are fine


@pytest.mark.parametrize("hydra, what", [
    ({"job_logging": {"handlers": {"x": {"()": "fmrobot_marker_mod.Evil"}}}}, r"hydra.job_logging.handlers.x.\(\)"),
    ({"hydra_logging": {"handlers": {"x": {"class": "os.system"}}}}, "hydra.hydra_logging.handlers.x.class"),
    ({"job": {"env_set": {"PYTHONPATH": "/tmp/evil"}}}, "hydra.job.env_set sets PYTHONPATH"),
    ({"launcher": {"_target_": "subprocess.Popen"}}, "hydra.launcher._target_ names 'subprocess.Popen'"),
])
def test_untrusted_hydra_settings_that_import_or_call_code_are_refused(hydra, what):
    with pytest.raises(ConfigError, match=what):
        security.check_untrusted_hydra({"hydra": hydra})


def test_hydra_defaults_pass_the_untrusted_check(monkeypatch):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module("fmrobot.configs", version_base="1.3"):
        config = OmegaConf.to_container(compose("run", return_hydra_config=True), resolve=False)
    GlobalHydra.instance().clear()
    security.check_untrusted_hydra(config)


def test_no_config_resolver_runs_code():
    import hydra  # noqa: F401 (registers Hydra's resolvers)

    import fmrobot.cli
    import fmrobot.run  # noqa: F401

    # Every registered resolver reads a value (environment, time, Hydra's runtime, another node) or
    # builds a container; none evaluates an expression or imports anything.
    safe = {"oc.env", "oc.create", "oc.decode", "oc.deprecated", "oc.select", "oc.dict.keys", "oc.dict.values",
            "now", "hydra", "python_version"}
    from omegaconf.basecontainer import BaseContainer

    registered = set(BaseContainer._resolvers)
    assert registered and registered <= safe, registered - safe
    for path in source_files():
        assert "register_new_resolver" not in path.read_text(), path


# --------------------------------------------------------------------------- source checks


def source_files() -> list[Path]:
    return sorted(p for folder in ("fmrobot", "sims") for p in (ROOT / folder).rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_calls(tree: ast.AST) -> list[str]:
    """Calls that can run text as code or load pickles."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        weights_only = keywords.get("weights_only")
        allow_pickle = keywords.get("allow_pickle")
        loader = keywords.get("Loader")
        if (name in ("eval", "exec", "compile", "__import__", "pickle.load", "pickle.loads", "marshal.loads",
                     "dill.load", "dill.loads", "cloudpickle.loads", "yaml.unsafe_load", "yaml.full_load",
                     "os.system", "os.popen", "shelve.open")
                or (name == "yaml.load" and not (loader is not None and "Safe" in _dotted(loader)))
                or (name == "torch.load" and not (isinstance(weights_only, ast.Constant) and weights_only.value))
                or (name.endswith("np.load") and isinstance(allow_pickle, ast.Constant) and allow_pickle.value)
                or (name.startswith("subprocess.") and keywords.get("shell") is not None)):
            found.append(f"{name} at line {node.lineno}")
    return found


def test_source_check_finds_what_it_looks_for():
    code = ("eval(text)\nexec(text)\npickle.loads(b)\nyaml.load(s)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
            "np.load(p, allow_pickle=True)\nsubprocess.run(t, shell=True)\nos.system(t)\n"
            "torch.load(p, weights_only=True)\nyaml.load(s, Loader=yaml.SafeLoader)\nmodel.eval()\n")
    assert len(unsafe_calls(ast.parse(code))) == 9


def test_fmrobot_and_sims_never_run_text_as_code_or_load_pickles():
    found = {str(p.relative_to(ROOT)): calls for p in source_files()
             if (calls := unsafe_calls(ast.parse(p.read_text())))}
    assert found == {}


def test_subprocess_is_used_only_with_fixed_commands():
    # The only subprocess calls in fmrobot/ ask git for the commit, with a literal argument list.
    users = {}
    for path in source_files():
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _dotted(n.func).startswith("subprocess.")]
        if calls:
            users[str(path.relative_to(ROOT))] = [isinstance(c.args[0], ast.List) and c.args[0].elts[0].value == "git"
                                                  for c in calls]
    assert users == {"fmrobot/provenance.py": [True, True]}


# --------------------------------------------------------------------------- model output is only text

MARKER_CODE = "__import__('pathlib').Path({path!r}).write_text('ran')"


def hostile_answers(marker: Path) -> list[str]:
    code = MARKER_CODE.format(path=str(marker))
    return [
        code,
        f"```python\n{code}\n```",
        f"$(touch {marker}); `touch {marker}`",
        json.dumps({"_target_": "os.system", "_args_": [f"touch {marker}"]}),
        json.dumps({"steps": [{"skill": "pick", "args": {"object": "red block"}}], "_target_": "os.system"}),
        json.dumps({"steps": [{"_target_": "subprocess.run", "args": [f"touch {marker}"]}]}),
        json.dumps({"steps": [{"skill": code, "args": {}}]}),
        json.dumps({"steps": [{"skill": "pick", "args": {"object": code}}]}),
        json.dumps({"steps": [{"skill": "pick", "args": {"object": "red block", "_target_": "os.system"}}]}),
        json.dumps({"steps": [{"skill": "pick", "args": {"object": f"$(touch {marker})"}}]}),
        json.dumps({"steps": [{"skill": "pick", "args": {"object": {"_target_": "os.system"}}}]}),
        json.dumps({"module": "os", "function": "system", "args": [f"touch {marker}"]}),
    ]


@pytest.mark.parametrize("index", range(12))
def test_structured_planner_treats_hostile_model_output_as_text(tmp_path, index):
    marker = tmp_path / "marker"
    answer = hostile_answers(marker)[index]
    planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=2), llm=ScriptedLM([answer, answer]))
    with pytest.raises(PlanningError) as raised:
        planner.plan("put the red block in the green bowl", synthetic_scene(), synthetic_context())
    assert str(raised.value).startswith("no valid plan after 2 attempts; last error: ")
    assert not marker.exists()


def test_a_valid_plan_wrapped_in_hostile_text_runs_only_known_skills_on_perceived_objects(tmp_path):
    marker = tmp_path / "marker"
    plan = {"steps": [{"skill": "pick", "args": {"object": "red block"}},
                      {"skill": "place", "args": {"target": "green bowl"}}]}
    answer = f"{MARKER_CODE.format(path=str(marker))}\n{json.dumps(plan)}\n$(rm -rf {marker})"
    decision = LlmStructuredPlanner(llm=ScriptedLM([answer])).plan(
        "put the red block in the green bowl", synthetic_scene(), synthetic_context())
    assert [(s.skill, dict(s.args)) for s in decision.plan.steps] == [
        ("pick", {"object": "red block"}), ("place", {"target": "green bowl"})]
    assert not marker.exists()


@pytest.mark.parametrize("answer", ["__import__('os').system('true')", "os.system('rm -rf /')", "", "\x00\u202e"])
def test_a_choice_answer_is_read_for_a_number_only(answer):
    assert _chosen_option(answer, [" pick up the red block", " done"]) is None
