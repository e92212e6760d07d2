import pytest

from fmrobot.control.scripted import ScriptedPolicy
from fmrobot.errors import ObjectNotFoundError
from fmrobot.perception.oracle import OraclePerceptor
from fmrobot.planning.scripted import ScriptedPlanner
from fmrobot.responders import OracleResponder
from fmrobot.runner import Runner
from fmrobot.safety.basic import BasicShield
from fmrobot.types import HelpRequest, Plan, PlanDecision, PlanningContext, SkillCall
from sims.tasks.ambiguous_pick_place import AmbiguousPickPlace, AmbiguousPickPlaceConfig


@pytest.fixture(scope="module")
def ambiguous_env():
    from sims.env import TabletopEnv

    env = TabletopEnv(task="ambiguous_pick_place")
    yield env
    env.close()


class AskEveryTime:
    """A planner that knows it cannot tell: it offers every block-bowl pair and asks."""

    def plan(self, instruction, scene, context):
        blocks = [o.label for o in scene.objects if o.label.endswith(" block")]
        bowls = [o.label for o in scene.objects if o.label.endswith(" bowl")]
        choices = tuple(Plan(steps=(SkillCall(skill="pick", args={"object": b}),
                                    SkillCall(skill="place", args={"target": w}))) for b in blocks for w in bowls)
        request = HelpRequest(question=f"which one for {instruction!r}?", options=tuple(map(str, choices)),
                              choices=choices)
        return PlanDecision(instruction=instruction, help=request)

    def replan(self, previous, feedback, scene, context):
        return self.plan(previous.instruction, scene, context)


def test_every_instruction_leaves_out_the_block_or_the_bowl(ambiguous_env):
    unsaid = set()
    for seed in range(12):
        episode, _ = ambiguous_env.reset_episode(seed)
        goal = ambiguous_env._goal
        unsaid.add(goal.unsaid)
        said = {"block": goal.block in episode.instruction, "bowl": goal.bowl in episode.instruction}
        assert goal.unsaid in ("block", "bowl") and not said[goal.unsaid] and said[{"block": "bowl",
                                                                                        "bowl": "block"}[goal.unsaid]]
        assert f"the {goal.unsaid} " in episode.instruction + " "  # "the block", not "the red block"
        others = [label for label, body in ambiguous_env.world.bodies.items()
                  if body.kind == goal.unsaid and label != getattr(goal, goal.unsaid)]
        assert others, "the left-out object needs a look-alike"
        assert ambiguous_env.evaluate()["success"] is False
    assert unsaid == {"block", "bowl"}


def test_the_words_alone_cannot_be_planned_but_asking_the_instructor_solves_it(ambiguous_env):
    episode, obs = ambiguous_env.reset_episode(0)
    scene = OraclePerceptor().perceive(ambiguous_env.observe(images=True), episode.task.vocabulary)
    context = PlanningContext(skills=ScriptedPolicy.skills[:2], task=episode.task, oracle_plan=episode.oracle_plan)
    with pytest.raises(ObjectNotFoundError, match="not in the scene"):
        ScriptedPlanner().plan(episode.instruction, scene, context)

    runner = Runner(env=ambiguous_env, perceptor=OraclePerceptor(), planner=AskEveryTime(), policy=ScriptedPolicy(),
                    shield=BasicShield(), responder=OracleResponder())
    for seed in (0, 1):
        result = runner.run_episode(seed).result
        assert result.success, result.failure_reason
        assert result.help_requests == 1


def test_bad_configs_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="for a mix use task=pick_place"):
        AmbiguousPickPlaceConfig(ambiguous=0.5)
    with pytest.raises(ValueError, match="num_blocks or num_bowls must be at least 2"):
        AmbiguousPickPlaceConfig(num_blocks=1, num_bowls=1)
    spec = AmbiguousPickPlace().spec()
    assert spec.name == "ambiguous_pick_place" and "red block" in spec.vocabulary
