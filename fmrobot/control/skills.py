"""The standard skill library: names, descriptions and typed parameters.

A skill's parameter model is the contract between planners and policies: planners see
its JSON schema, and every call is validated against it before anything moves.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.types import SkillSpec


class _Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PickParameters(_Parameters):
    object: str = Field(min_length=1, description="label of the object to grasp, e.g. 'red block'")


class PlaceParameters(_Parameters):
    target: str = Field(min_length=1, description="label of the object to put the held object in or on")


PICK = SkillSpec(
    name="pick",
    description="Grasp the named object from above and lift it.",
    parameters=PickParameters,
    object_arguments=("object",),
    phrase="pick up the {object}",
)
PLACE = SkillSpec(
    name="place",
    description="Put the object in the gripper into or onto the named target object.",
    parameters=PlaceParameters,
    object_arguments=("target",),
    phrase="put it in the {target}",
)

class HomeParameters(_Parameters):
    pass


HOME = SkillSpec(
    name="home",
    description="Move the arm to its resting pose, out of the cameras' view, keeping what it holds.",
    parameters=HomeParameters,
    phrase="go to the resting pose",
)

STANDARD_SKILLS: tuple[SkillSpec, ...] = (PICK, PLACE, HOME)
