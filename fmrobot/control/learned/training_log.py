"""Where `python -m fmrobot.train` reports progress besides its progress bar: `train.logger=tensorboard`
writes TensorBoard event files into `<out_dir>/tensorboard` (`tensorboard --logdir <out_dir>`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

#: Steps between logged points: often enough for a smooth curve, rare enough to cost nothing.
LOG_EVERY = 10


class TensorBoardLogger:
    """Losses and learning rate as scalars while training; at the end, the loss curve as a figure and
    the run's figures (samples, demonstrations, final loss) as text."""

    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package (extra `lerobot`)

        self.log_dir = log_dir
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self._writer.add_scalar(name, value, step)

    def finish(self, step: int, losses: Sequence[float], figures: Mapping[str, float]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 3.5))
        axes.plot(range(1, len(losses) + 1), losses, linewidth=0.6)
        axes.set_yscale("log")
        axes.set_xlabel("step")
        axes.set_ylabel("training loss")
        figure.tight_layout()
        self._writer.add_figure("train/loss_curve", figure, step)  # closes the figure
        self._writer.add_text("train/summary", "\n".join(f"- {k}: {v}" for k, v in figures.items()), step)
        for name, value in figures.items():
            if isinstance(value, (int, float)):
                self._writer.add_scalar(f"summary/{name}", value, step)
        self._writer.close()


def make_logger(kind: str, out_dir: Path) -> TensorBoardLogger | None:
    """The logger `train.logger` names; None for `none` (the progress bar only)."""
    return TensorBoardLogger(out_dir / "tensorboard") if kind == "tensorboard" else None
