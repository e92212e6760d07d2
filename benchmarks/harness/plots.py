"""Figures of a suite report: success with Wilson intervals, and where an episode's time goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from benchmarks.harness.definition import BASE


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on these machines
    import matplotlib.pyplot as plt

    return plt


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def success_plot(report: Mapping[str, Any], path: Path) -> Path:
    """Bars of success rate per task, one hue per configuration, one panel per level, Wilson 95% error bars."""
    plt = _pyplot()
    cells = [c for c in report["cells"] if c["variant"] == BASE]
    tasks = _unique(c["task"] for c in cells)
    configurations = _unique(c["configuration"] for c in cells)
    levels = _unique(c["level"] for c in cells)
    by_key = {(c["task"], c["configuration"], c["level"]): c for c in cells}
    width = 0.8 / max(1, len(configurations))
    fig, axes = plt.subplots(1, len(levels), figsize=(max(5.0, 1.1 * len(tasks) * len(levels) + 2), 4.2),
                             sharey=True, squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for panel, level in zip(axes[0], levels):
        for index, name in enumerate(configurations):
            xs, rates, low, high = [], [], [], []
            for t, task in enumerate(tasks):
                cell = by_key.get((task, name, level))
                if cell is None or not cell["episodes"]:
                    continue
                rate = cell["success_rate"]
                xs.append(t + (index - (len(configurations) - 1) / 2) * width)
                rates.append(rate)
                # max(0, ...): at 0% or 100% the bound equals the rate up to rounding, which may dip below it
                low.append(max(0.0, rate - cell["wilson_95"][0]))
                high.append(max(0.0, cell["wilson_95"][1] - rate))
            panel.bar(xs, rates, width * 0.9, yerr=[low, high], capsize=3, color=colors[index % len(colors)],
                      label=name, error_kw={"elinewidth": 1})
            for x, (t, task) in zip(xs, [(t, task) for t, task in enumerate(tasks)
                                         if (by_key.get((task, name, level)) or {}).get("episodes")]):
                cell = by_key[(task, name, level)]
                # k/n under each bar: a 0% bar is otherwise indistinguishable from a cell that did not run
                panel.text(x, -0.01, f"{cell['successes']}/{cell['episodes']}", ha="center", va="top",
                           fontsize=7, rotation=90 if len(configurations) > 3 else 0)
        panel.set_xticks(range(len(tasks)))
        panel.set_xticklabels(tasks, rotation=30 if len(tasks) > 3 else 0, ha="right" if len(tasks) > 3 else "center")
        panel.tick_params(axis="x", pad=22)  # room for the k/n labels
        panel.set_ylim(0, 1.05)
        panel.set_title(f"level {level}")
        panel.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("success rate (Wilson 95% interval)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4), frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.suptitle(f"{report['suite']['name']}: success by task and configuration", y=1.08 if labels else 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def latency_plot(report: Mapping[str, Any], path: Path) -> Path:
    """Stacked bars of median seconds per stage for each task x configuration, one panel per level."""
    plt = _pyplot()
    from benchmarks.harness.report import stage_names

    cells = [c for c in report["cells"] if c["variant"] == BASE]
    stages = [s for s in stage_names() if any((c["median_stage_seconds"].get(s) or 0) > 0 for c in cells)]
    levels = _unique(c["level"] for c in cells)
    columns = _unique((c["task"], c["configuration"]) for c in cells)
    by_key = {(c["task"], c["configuration"], c["level"]): c for c in cells}
    fig, axes = plt.subplots(1, len(levels), figsize=(max(5.0, 0.55 * len(columns) * len(levels) + 2.5), 4.8),
                             sharey=True, squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for panel, level in zip(axes[0], levels):
        bottom = [0.0] * len(columns)
        timed = [by_key.get((task, name, level)) for task, name in columns]
        for index, stage in enumerate(stages):
            heights = [(c["median_stage_seconds"].get(stage) or 0.0) if c else 0.0 for c in timed]
            panel.bar(range(len(columns)), heights, 0.7, bottom=bottom, label=stage, color=colors[index % len(colors)])
            bottom = [b + h for b, h in zip(bottom, heights)]
        walls = [(x, c["median_wall_time"]) for x, c in enumerate(timed) if c and c["median_wall_time"] is not None]
        if walls:
            panel.scatter(*zip(*walls), marker="_", s=300, color="black", label="median wall time", zorder=3)
        panel.set_xticks(range(len(columns)))
        labels = [f"{task}\n{name}" if len(_unique(t for t, _ in columns)) > 1 else name for task, name in columns]
        panel.set_xticklabels(labels, fontsize=8, rotation=45 if len(columns) > 2 else 0,
                              ha="right" if len(columns) > 2 else "center")
        panel.set_title(f"level {level}")
        panel.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("median seconds per episode")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(f"{report['suite']['name']}: time per episode by stage (medians; crashed episodes left out)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
