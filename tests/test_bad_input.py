"""Bad input, property-based: a user mistake in a config or an instruction is one clear line.

Configs go through the command line's own path (Hydra composition, then RunSettings,
resolve_components and the registry); instructions go to every planner on the small
synthetic scene. Nothing is built: each example validates only, so hundreds run in
seconds. A few real `python -m fmrobot.run` calls close the loop on what a user sees.
"""

from __future__ import annotations

import copy
import json
import os
import re
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fmrobot import registry, security
from fmrobot.cli import config_error_line
from fmrobot.errors import ConfigError, FmrobotError, PlanningError
from fmrobot.planning.llm_scoring import LlmScoringConfig, LlmScoringPlanner
from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner
from fmrobot.planning.oracle import OraclePlanner
from fmrobot.planning.scripted import ScriptedPlanner
from fmrobot.stack import RunSettings, resolve_components
from fmrobot.testing import synthetic_context, synthetic_scene
from tests.fakes import KeywordLM, compose_config, run_command

MESSAGE_LIMIT = 4000  # characters: an error line is read by a person
PYBULLET_BANNER = re.compile(r"^pybullet build time: ")
CHEAP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Characters users and models get wrong: controls (NUL, escape, bell), format marks (RTL override,
#: zero-width joiner, BOM), line and paragraph separators, lone surrogates, emoji, other scripts.
ODD = st.characters(categories=["L", "N", "P", "S", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "M"])
ODD_TEXT = st.one_of(
    st.text(ODD, max_size=40),
    st.sampled_from(["", " ", "\x00", "\u202eevil", "\u200f\u200e", "\ufeff", "🙂" * 50, "a\nb", "\r\n",
                     "\x1b[31mred\x1b[0m", "\ud800", "é" * 3000, "x" * 5000, "${oc.env:HOME}", "'\"", "[", "{",
                     "None", "null", "nan", "-inf", "1e999", "-1", "0", "99999999999999999999999999"]),
)


def one_clear_line(message: str) -> None:
    assert message.strip(), "empty message"
    assert "\n" not in message and "\r" not in message, message[:300]
    assert all(c.isprintable() or c == " " for c in message), ascii(message[:300])
    assert len(message) <= MESSAGE_LIMIT, f"{len(message)} characters: {message[:300]}..."
    assert "Traceback" not in message


# --------------------------------------------------------------------------- configs

BASE = compose_config(["perception=oracle", "planner=llm_structured", "llm=openai"])

#: Where a user can put a value: run settings, each component group's name and options.
SETTING_PATHS = [
    "seed", "episodes", "video", "annotate", "runner", "runner.max_replans", "runner.max_decisions",
    "runner.settle_seconds", "runner.nope",
    *(f"{group}.{key}" for group in ("task", "env", "perception", "planner", "llm", "policy", "safety", "executor",
                                     "responder")
      for key in (*BASE[group], "_target_", "no_such_option")),
    "task", "planner", "llm", "safety",
]

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=True, allow_infinity=True), ODD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ODD_TEXT, inner, max_size=3)),
    max_leaves=6,
)


@contextmanager
def untrusted():
    """Random `_target_` strings must not import whatever module they happen to name."""
    before = os.environ.get(registry.UNTRUSTED_ENV)
    os.environ[registry.UNTRUSTED_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(registry.UNTRUSTED_ENV)
        else:
            os.environ[registry.UNTRUSTED_ENV] = before


def validate(config: dict) -> None:
    """What `python -m fmrobot.run` checks before it builds anything."""
    security.check_config(config)
    RunSettings.from_config(config)
    resolve_components(config)
    if config.get("llm") is not None:  # `~llm` removes it: a planner that needs one says so when it is built
        registry.resolve("llm", config["llm"])
    if config.get("responder"):
        registry.resolve("responder", config["responder"])


def set_path(config: dict, path: str, value) -> dict:
    changed = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[last] = value
    return changed


@pytest.mark.slow
@CHEAP
@given(path=st.sampled_from(SETTING_PATHS), value=JSONISH)
@example(path="seed", value=-1)
@example(path="episodes", value=float("nan"))
@example(path="runner", value="fast")
@example(path="planner", value="llm_structured")
@example(path="llm", value=None)
@example(path="task.name", value="x" * 100_000)
@example(path="planner._target_", value="\u202eos.system")
@example(path="planner._target_", value="fmrobot.registry.available")
@example(path="executor.workers", value=2**70)
@example(path="llm.timeout", value=float("inf"))
@example(path="perception.no_such_option", value="\x00")
@example(path="llm.api_key_env", value=["OPENAI_API_KEY"])
def test_any_config_value_validates_or_is_refused_in_one_line(path, value):
    config = set_path(BASE, path, value)
    with untrusted():
        try:
            validate(config)
        except ConfigError as error:
            one_clear_line(str(error))


OVERRIDE_KEYS = ["seed", "episodes", "video", "annotate", "runner.max_replans", "runner.settle_seconds", "task.name",
                 "task", "planner", "llm", "perception", "safety", "executor", "executor.workers", "llm.timeout",
                 "llm.model", "llm.base_url", "planner.max_attempts", "+planner._target_", "+task.nope", "nope",
                 "policy.approach_speed", "~llm", "++seed", "hydra.run.dir"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # composing takes 0.3 s
@given(key=st.sampled_from(OVERRIDE_KEYS), value=ODD_TEXT)
@example(key="seed", value="[1,2")
@example(key="episodes", value="${oc.env:FMROBOT_NO_SUCH_VARIABLE}")
@example(key="planner", value="\u202escripted")
@example(key="llm.timeout", value="-1")
@example(key="task", value="null")  # Hydra raises a plain ValueError
@example(key="~llm", value="NULL")  # no language model at all: the planner that needs one says so
@example(key="task", value="x" * 100_000)  # a config file name no file system takes
def test_any_override_composes_and_validates_or_is_refused_in_one_line(key, value):
    override = f"{key}={value}"
    assume("\x00" not in override)  # a command line cannot hold NUL
    try:
        config = compose_config(["perception=oracle", override])
    except Exception as error:  # what the command line reports in one line
        one_clear_line(config_error_line(error))
        return
    with untrusted():
        try:
            validate(config)
        except ConfigError as error:
            one_clear_line(str(error))


# One case per layer of checking runs in the fast tier (`-m "not slow"`); each case runs `fmrobot.run`'s command line
# (in process: tests.fakes.run_command).
BAD_OVERRIDES = [
    ("seed='\u202e1'", "invalid run settings: seed: Input should be a valid integer"),
    ("task.name='🙂'", "unknown task '🙂'; installed: "),
    ("planner=a\nb", r"invalid override 'planner=a\nb': LexerNoViableAltException"),
    ("seed=${oc.env:FMROBOT_NO_SUCH_VARIABLE}", "Environment variable 'FMROBOT_NO_SUCH_VARIABLE' not found"),
]
MORE_BAD_OVERRIDES = [
    ("episodes=" + "9" * 5000, "Exceeds the limit (4300 digits) for integer string conversion"),
    ("episodes=" + "9" * 300, "invalid run settings: episodes"),
    ("video='\x1b[31mred'", r"no option '\x1b[31mred' in group 'video'; options: all, first, none"),
    ("video.episodes='\x1b[31mred'", r"video.episodes: Input should be 'none', 'first' or 'all' (got '\x1b[31mred')"),
    ("video=\x1b[31mred", r"invalid override 'video=\x1b[31mred': LexerNoViableAltException"),
    ("task.name='a\nb'", r"unknown task 'a\nb'; installed: "),
    ("perception.name='" + "\u200f" * 20_000 + "'", r"unknown perception '\u200f\u200f"),
    ("llm.timeout=-1", "unknown config key 'llm.timeout' (llm (smollm2) has: name, source, threads, "),
    ("planner='a\nb'", r"no option 'a\nb' in group 'planner'; options: llm_goal, llm_scoring, "),
    ("seed=[1,2", "invalid override 'seed=[1,2': no viable alternative at input '[1,2'"),
    ("task=null", "ValueError while composing the config: Config group override must be a string or a list"),
    ("task=" + "x" * 5000, "cannot read config "),
]


@pytest.mark.parametrize("override, expected", [*BAD_OVERRIDES, *(pytest.param(*case, marks=pytest.mark.slow)
                                                                   for case in MORE_BAD_OVERRIDES)])
def test_the_command_line_answers_a_bad_override_with_one_line(tmp_path, override, expected):
    done = run_command("perception=oracle", "video=none", override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip() and not PYBULLET_BANNER.match(line)]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("fmrobot: error: ") and expected in lines[0], lines[0][:500]
    one_clear_line(lines[0])


# --------------------------------------------------------------------------- instructions

SCENE = synthetic_scene()
CONTEXT = synthetic_context()
LABELS = set(SCENE.labels)

INSTRUCTIONS = st.one_of(
    ODD_TEXT,
    st.builds(lambda a, b: f"put the {a} in the {b}", st.sampled_from([*LABELS, "RED  block", "blue block"]) | ODD_TEXT,
              st.sampled_from([*LABELS]) | ODD_TEXT),
    st.builds(lambda a, b: a + b, st.sampled_from(["put the red block in the green bowl", "pick"]), ODD_TEXT),
)


def check_outcome(plan_call) -> None:
    """A valid decision over known skills and perceived objects, or a one-line PlanningError."""
    try:
        decision = plan_call()
    except PlanningError as error:
        one_clear_line(str(error))
        return
    options = [decision.plan] if decision.plan is not None else list(decision.help.choices)
    for plan in options:
        for call in plan.steps:
            spec = CONTEXT.skill(call.skill)
            spec.validate_call(call)
            assert set(call.objects(spec)) <= LABELS, call


class EchoLM:
    """A model that writes the instruction back: as a plan's object, as JSON, or as it is."""

    def __init__(self, instruction: str):
        self.answers = [json.dumps({"steps": [{"skill": "pick", "args": {"object": instruction}}]}),
                        instruction, json.dumps(instruction)]

    def generate(self, messages, schema=None) -> str:
        return self.answers.pop(0)

    def score(self, prompt, continuations):
        raise NotImplementedError


@CHEAP
@given(instruction=INSTRUCTIONS)
@example(instruction="put the red block in the green bowl")
@example(instruction="put the \ud800 in the green bowl")
@example(instruction="x" * 100_000)
@example(instruction="")
def test_every_planner_plans_validly_or_refuses_in_one_line(instruction):
    check_outcome(lambda: ScriptedPlanner().plan(instruction, SCENE, CONTEXT))
    check_outcome(lambda: OraclePlanner().plan(instruction, SCENE, CONTEXT))
    check_outcome(lambda: LlmStructuredPlanner(LlmStructuredConfig(max_attempts=3), llm=EchoLM(instruction))
                  .plan(instruction, SCENE, CONTEXT))
    for ask in (False, True):
        planner = LlmScoringPlanner(LlmScoringConfig(ask_for_help=ask), llm=KeywordLM())
        check_outcome(lambda planner=planner: planner.plan(instruction, SCENE, CONTEXT))


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig
    from tests.fakes import save_tiny_causal_lm

    folder = save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model")
    lm = TransformersLM(TransformersLMConfig(model=folder, max_new_tokens=24))
    lm.tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    return lm


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(instruction=INSTRUCTIONS)
@example(instruction="put the \ud800 in the green bowl")
@example(instruction="🙂\u202e\x00" * 300)
@example(instruction="x" * 100_000)
def test_planners_on_a_real_tiny_model_plan_validly_or_refuse_in_one_line(tiny_lm, instruction):
    check_outcome(lambda: LlmScoringPlanner(LlmScoringConfig(), llm=tiny_lm).plan(instruction, SCENE, CONTEXT))
    check_outcome(lambda: LlmStructuredPlanner(LlmStructuredConfig(max_attempts=1), llm=tiny_lm)
                  .plan(instruction, SCENE, CONTEXT))


def test_planning_errors_quote_a_huge_instruction_briefly():
    with pytest.raises(FmrobotError) as raised:
        ScriptedPlanner().plan("do it\n" + "x" * 100_000, SCENE, CONTEXT)
    one_clear_line(str(raised.value))
    assert len(str(raised.value)) < 1000
