"""The errors fmrobot raises on purpose.

Each carries one message that says what was expected and what exists. The command
line prints `FmrobotError` messages as a single line instead of a traceback; the runner
turns the episode-level ones into a failed episode with its reason.
"""


class FmrobotError(Exception):
    """Base of every deliberate fmrobot error."""


class ConfigError(FmrobotError):
    """A config value, group option or component name that cannot be used."""


class UnknownComponentError(ConfigError):
    """A component name that no installed package registers."""


class PlanningError(FmrobotError):
    """A planner could not turn the instruction and scene into a valid plan."""


class ObjectNotFoundError(PlanningError):
    """An instruction or skill call names an object that is not in the scene."""


class SkillArgumentError(PlanningError):
    """A skill call names an unknown skill or has arguments its schema rejects."""


class LanguageModelError(FmrobotError):
    """A language-model backend could not answer: unreachable, refused, or a malformed reply."""
