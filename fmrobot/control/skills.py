"""The standard skill library: names, descriptions and typed parameters.

A skill's parameter model is the contract between planners and policies: planners see
its JSON schema, and every call is validated against it before anything moves.
"""

from __future__ import annotations

from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import SkillCall, SkillSpec

#: Sides of an object as the robot sees it: the robot stands at the origin facing +x, so
#: "left" is +y, "right" is -y, "behind" is +x (farther from the robot), "front" is -x (nearer).
Side = Literal["left", "right", "front", "behind"]
SIDE_DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (0.0, 1.0), "right": (0.0, -1.0), "behind": (1.0, 0.0), "front": (-1.0, 0.0),
}


class _Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WordedSkillSpec(SkillSpec):
    """A skill whose phrase needs words for some argument values ("front" reads "in front of")."""

    words: Mapping[str, Mapping[str, str]] = {}  # argument -> value -> words in the phrase

    def say(self, call: SkillCall) -> str:
        args = {k: self.words.get(k, {}).get(str(v), v) for k, v in call.args.items()}
        return self.phrase.format(**args) if self.phrase else str(call)


class PickParameters(_Parameters):
    object: str = Field(min_length=1, description="label of the object to grasp, e.g. 'red block'")


class PlaceParameters(_Parameters):
    target: str = Field(min_length=1, description="label of the object to put the held object in or on")


PICK = SkillSpec(
    name="pick",
    description="Grasp the named object from above and lift it.",
    parameters=PickParameters,
    object_arguments=("object",),
    moved_arguments=("object",),
    phrase="pick up the {object}",
    needs_gripper="empty",
    leaves_gripper="holding",
)
PLACE = SkillSpec(
    name="place",
    description="Put the object in the gripper into or onto the named target object.",
    parameters=PlaceParameters,
    object_arguments=("target",),
    phrase="put it in the {target}",
    needs_gripper="holding",
    leaves_gripper="empty",
)

class HomeParameters(_Parameters):
    pass


HOME = SkillSpec(
    name="home",
    description="Move the arm to its resting pose, out of the cameras' view, keeping what it holds.",
    parameters=HomeParameters,
    phrase="go to the resting pose",
)



class PlaceNextToParameters(_Parameters):
    target: str = Field(min_length=1, description="label of the object to put the held object beside")
    side: Side = Field(description="which side of the target, as the robot sees it: left, right, front or behind")


class PlaceBetweenParameters(_Parameters):
    first: str = Field(min_length=1, description="label of one of the two objects to put the held object between")
    second: str = Field(min_length=1, description="label of the other one")


class PushParameters(_Parameters):
    object: str = Field(min_length=1, description="label of the object to push along the table")
    target: str = Field(min_length=1, description="label of the region (e.g. 'green zone') to push it into")


PLACE_NEXT_TO = WordedSkillSpec(
    name="place_next_to",
    description=(
        "Put the object in the gripper on the table beside the named target, a small gap from its footprint. "
        "Sides are as the robot sees the table (the robot faces +x): left is +y, right is -y, "
        "behind is +x (farther from the robot), front is -x (nearer to it)."
    ),
    parameters=PlaceNextToParameters,
    object_arguments=("target",),
    phrase="put it {side} the {target}",
    needs_gripper="holding",
    leaves_gripper="empty",
    words={"side": {"left": "to the left of", "right": "to the right of", "front": "in front of",
                    "behind": "behind"}},
)
PLACE_BETWEEN = SkillSpec(
    name="place_between",
    description="Put the object in the gripper on the table halfway between the two named objects.",
    parameters=PlaceBetweenParameters,
    object_arguments=("first", "second"),
    phrase="put it between the {first} and the {second}",
    needs_gripper="holding",
    leaves_gripper="empty",
)
PUSH = SkillSpec(
    name="push",
    description=(
        "With an empty, closed gripper, push the named object along the table, without lifting it, "
        "until its centre is inside the named target region."
    ),
    parameters=PushParameters,
    object_arguments=("object", "target"),
    moved_arguments=("object",),
    phrase="push the {object} into the {target}",
    needs_gripper="empty",
    leaves_gripper="empty",
)

#: Skills that put down what the gripper holds.
PLACING_SKILLS = frozenset({"place", "place_next_to", "place_between"})

STANDARD_SKILLS: tuple[SkillSpec, ...] = (PICK, PLACE, HOME, PLACE_NEXT_TO, PLACE_BETWEEN, PUSH)
