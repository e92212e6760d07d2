"""`python -m fmrobot.run` as a user meets it: outputs, summary line, config errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmrobot import registry
from fmrobot.stack import COMPONENT_GROUPS, resolve_components
from tests.fakes import compose_config, run_command

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmrobot.run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.slow
def test_two_episodes_write_results_traces_and_one_video(tmp_path):
    run_dir = tmp_path / "out"
    done = run_cli("task=pick_place", "episodes=2", "seed=5", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((run_dir / "results.json").read_text())
    summary = results["summary"]
    assert summary["episodes"] == 2 and 0 <= summary["successes"] <= 2
    assert summary["success_rate"] == summary["successes"] / 2
    episodes = results["episodes"]
    assert [e["seed"] for e in episodes] == [5, 6]
    for record in episodes:
        assert set(record["latency"]) >= {"perception", "planning", "control", "simulation"}
        assert set(record["predicates"]) >= {"success", "block_in_bowl"}
        assert record["env_steps"] > 0
        assert (run_dir / record["trace_file"]).exists()
    assert episodes[0]["video_file"] == "videos/seed_000005.mp4" and episodes[1]["video_file"] is None
    assert (run_dir / "videos" / "seed_000005.mp4").stat().st_size > 10_000
    # The summary line, followed only by the reasons of failed episodes, if any.
    line = next(line for line in done.stdout.splitlines() if line.startswith("pick_place: "))
    assert line.startswith(f"pick_place: {summary['successes']}/2 episodes succeeded")
    assert line.endswith("results in out/results.json")  # relative to the working directory
    assert ("why episodes failed" in done.stdout) == (summary["successes"] < 2)
    # run.log tells what the run did, episode by episode; the terminal's stdout holds only the report.
    log = (run_dir / "run.log").read_text()
    assert "task pick_place, seeds 5..6, 2 to run; task=pick_place" in log
    assert "seed 5: " in log and "seed 6: " in log and line in log
    assert "[INFO]" not in done.stdout


def test_bad_value_is_one_clear_line_and_exit_code_2(tmp_path):
    # A real process (the exit status as a shell sees it); the other error tests run the same main() in process.
    done = run_cli("policy.speed=fast", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("fmrobot: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "policy" in errors[0] and "speed" in errors[0] and "'fast'" in errors[0]


def test_unknown_component_name_lists_installed_ones(tmp_path):
    done = run_command("perception.name=xray", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown perception 'xray'; installed: clip, oracle, owlvit" in done.stderr


def test_unknown_responder_fails_before_anything_is_built(tmp_path):
    done = run_command("responder.name=nobody", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown responder 'nobody'; installed: console, none, oracle" in done.stderr


def test_unknown_group_option_lists_available_options(tmp_path):
    done = run_command("perception=xray", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode != 0
    assert "no option 'xray' in group 'perception'" in done.stderr and "options: clip, oracle, owlvit" in done.stderr


def test_an_unknown_top_level_key_is_refused_not_ignored(tmp_path):
    done = run_command("+episode=5", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown top-level config key(s) 'episode'" in done.stderr and "episodes" in done.stderr
    assert not (tmp_path / "results.json").exists()


def test_any_component_is_swapped_by_one_override():
    config = compose_config(["planner=oracle", "safety=none", "executor.workers=2"])
    assert config["planner"]["name"] == "oracle" and config["safety"]["name"] == "none"
    assert resolve_components(config)["executor"].config.workers == 2


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name != "benchmark"),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")  # benchmark/: suites (tests/benchmarks)
def test_every_shipped_config_file_validates(path):
    group = path.parent.name
    config = compose_config([f"{group}={path.stem}"])
    if group in COMPONENT_GROUPS or group in registry.GROUPS:
        # The options; whether a hub id's model can be had here is tests/test_hub.py's business.
        registry.resolve(group, config[group], check_sources=False)
    elif group == "robot":
        from sims.robots import robot_config

        robot_config(config["robot"])
    elif group == "level":  # a level sets options of the task and the env: both must still validate
        registry.resolve("task", config["task"])
        registry.resolve("env", config["env"])


@pytest.mark.slow
def test_worker_processes_give_the_same_per_seed_results_as_in_process(tmp_path):
    records = {}
    for workers in (1, 2):
        run_dir = tmp_path / f"w{workers}"
        done = run_cli("episodes=2", "video=none", f"executor.workers={workers}", f"hydra.run.dir={run_dir}",
                       cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        episodes = json.loads((run_dir / "results.json").read_text())["episodes"]
        records[workers] = [(e["seed"], e["success"], e["env_steps"], e["predicates"]) for e in episodes]
        traces = sorted(p.read_text() for p in (run_dir / "traces").glob("*.jsonl"))
        records[workers].append(traces)
    assert records[1] == records[2]


@pytest.mark.slow
def test_annotate_saves_each_perception_image_with_boxes(tmp_path):
    run_dir = tmp_path / "out"
    done = run_cli("video=none", "annotate=true", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    images = sorted((run_dir / "annotations").glob("*.png"))
    assert [p.name for p in images] == ["seed_000000_perception0_front.png"]
    from PIL import Image
    import numpy as np

    annotated = np.asarray(Image.open(images[0]))
    assert annotated.shape == (480, 640, 3)
    assert (annotated == 255).all(axis=-1).sum() > 500  # white box outlines and label text were drawn


@pytest.mark.slow
def test_native_library_chatter_stays_off_the_terminal(tmp_path):
    # PyBullet's build-time banner (printed from C as it loads) and EGL's messages, in this process and in
    # worker processes: the terminal shows the progress bar and the report only.
    done = run_cli("task=pick_place", "perception=oracle", "planner=oracle", "episodes=2", "executor.workers=2",
                   f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in (done.stdout, done.stderr):
        assert "build time" not in text and "EGL" not in text and "GL_" not in text, text[-2000:]


@pytest.mark.slow
def test_the_readme_first_command_prints_its_summary_and_nothing_else(tmp_path):
    # The default stack (clip perception, llm_goal with SmolLM2, a video): no library warning, progress bar
    # or native line between the command and its summary.
    done = run_cli("task=pick_place", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", done.stderr[-3000:]
    assert done.stdout.splitlines()[0].startswith("pick_place: 1/1 episodes succeeded"), done.stdout
