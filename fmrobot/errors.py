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


class ImagesNotSupportedError(ConfigError):
    """A text-only language-model backend was given a message with images."""


class PlanningError(FmrobotError):
    """A planner could not turn the instruction and scene into a valid plan."""


class ObjectNotFoundError(PlanningError):
    """An instruction or skill call names an object that is not in the scene."""


class SkillArgumentError(PlanningError):
    """A skill call names an unknown skill or has arguments its schema rejects."""


class LanguageModelError(FmrobotError):
    """A language-model backend could not answer: unreachable, refused, or a malformed reply."""


class SimulationError(FmrobotError):
    """The simulated world became invalid (non-finite or runaway body states): the episode cannot go on."""


def shown(value: object, limit: int = 120) -> str:
    """`value` as repr on one line, cut to about `limit` characters: for echoing user input in a message.

    repr escapes line breaks, control and other unprintable characters, so the message stays one line.
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({len(text)} characters)"


def one_line(text: str, limit: int = 2000) -> str:
    """`text` with line breaks, control characters and lone surrogates escaped, cut to about `limit`
    characters: what the command line prints for an error, whatever the error carries."""
    escaped = "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)
    return escaped if len(escaped) <= limit else f"{escaped[:limit - 3]}... ({len(escaped)} characters)"

