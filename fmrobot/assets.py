"""Files fmrobot ships inside its packages (prompts, calibrations, checkpoints), chosen by name or by path.

A config option such as `planner.prompt` or `policy.checkpoint` takes either the name of a
shipped file or a path to the user's own; every such option is resolved here, the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShippedFiles:
    """The files `<folder>/<name><suffix>`: the shipped choices of one option."""

    folder: Path
    suffix: str  # ".txt", ".json", "_bc.pt": what follows the name in a shipped file's name

    def names(self) -> list[str]:
        return sorted(p.name[: -len(self.suffix)] for p in self.folder.glob(f"*{self.suffix}"))

    def find(self, name_or_path: str) -> Path | None:
        """The shipped file called `name_or_path`, else that path (`~` expanded) if it is a file; None if neither."""
        shipped = self.folder / f"{name_or_path}{self.suffix}"
        if shipped.is_file():
            return shipped
        path = Path(name_or_path).expanduser()
        return path if path.is_file() else None

    def listing(self) -> str:
        """The shipped names for an error message ("none" when there are none)."""
        return ", ".join(self.names()) or "none"
