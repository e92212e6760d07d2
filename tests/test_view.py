"""`python -m fmrobot.view`: a run or suite folder as JSON, served on loopback only, and the page in headless Chromium.

The fast tests build folders with the project's own writers (fmrobot.outputs, the suite harness's report) and call
the web app in process; the slow ones run a real run and drive the page with Playwright and a system Chromium.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmrobot.errors import FmrobotError
from fmrobot.outputs import write_annotations, write_results, write_trace
from fmrobot.trace import parse_event, trace_json
from fmrobot.types import EpisodeFailure, EpisodeResult, StageTimes
from fmrobot.view import listen, loopback, main
from fmrobot.viewer.folders import open_folder

ROOT = Path(__file__).resolve().parents[1]
REASON = "gave up after 0 replans; last failure: place: raise: the held object slipped out of the gripper"
VIDEO_BYTES = bytes(range(256)) * 8  # stands in for an MP4: the fast tests check bytes, not playback


# ---------------------------------------------------------------------------- folders built with the real writers

def _events(seed: int, success: bool) -> list[dict[str, Any]]:
    place = {"skill": "place", "args": {"target": "purple bowl"}}
    events = [
        {"event": "reset", "task": "pick_place", "seed": seed,
         "instruction": "place the blue block into the purple bowl", "given_instruction": False, "judged_by": "task", "goal": {"block": "blue block", "bowl": "purple bowl"}},
        {"event": "decision", "decision": {"plan": ["pick(object='blue block')", "place(target='purple bowl')"],
                                           "final": True, "help": None, "confidence": 1.0, "rationale": "task oracle"}},
        {"event": "safety", "verdict": {"allowed": True, "plan": None, "violations": []}},
        {"event": "skill", "step_index": 1, "call": place, "status": "success" if success else "failure",
         "reason": "" if success else "place: raise: the held object slipped out of the gripper", "env_steps": 5},
        {"event": "fault", "fault": "grasp_slip", "effect": "the blue block slipped", "step": 69},
        {"event": "result", "success": success, "predicates": {"block_in_bowl": success, "success": success},
         "failure": None if success else REASON, "safety": {"refusals": [], "repairs": {}}},
    ]
    return trace_json(parse_event(e) for e in events)  # each one a valid trace event


def _result(seed: int, success: bool, run_dir: Path) -> EpisodeResult:
    return EpisodeResult(
        task="pick_place", seed=seed, instruction="place the blue block into the purple bowl", success=success,
        predicates={"success": success}, env_steps=71, skill_calls=2, replans=0,
        failure_reason=None if success else REASON,
        failure=None if success else EpisodeFailure(stage="control", kind="skill_failed", skill="place"),
        latency=StageTimes(reset=0.2, render=0.5 + seed, simulation=0.3), wall_time=1.0 + seed,
        trace_file=str(write_trace(run_dir, seed, _events(seed, success)).relative_to(run_dir)),
    )


def make_run(run_dir: Path, outcomes: dict[int, bool]) -> Path:
    results = [_result(seed, success, run_dir) for seed, success in outcomes.items()]
    failed = next(seed for seed, success in outcomes.items() if not success)
    (run_dir / "videos").mkdir()
    (run_dir / "videos" / f"seed_{failed:06d}.mp4").write_bytes(VIDEO_BYTES)
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    write_annotations(run_dir, failed, [(f"perception{k}_front", image) for k in (10, 0, 2)])
    config = {"task": {"name": "pick_place"}, "planner": {"name": "oracle"}, "video": {"annotate": True}}
    write_results(run_dir, results, config)
    return run_dir


def make_suite(out: Path, plots: bool = False) -> Path:
    """A suite results folder as the harness writes it: its report from pinned cells and ledger records."""
    from benchmarks.harness.pinning import write_json
    from benchmarks.harness.report import build_report, markdown

    suite = {"name": "tiny", "description": "two cells", "tasks": ["pick_place"], "levels": ["none"],
             "configurations": {"oracle": ["planner=oracle"], "slip": ["fault=grasp_slip"]},
             "seeds": {"start": 0, "count": 3}, "overrides": ["video=none"], "attribution": False}
    cells, records = {}, []
    for name, outcomes in (("oracle", {0: True, 1: True, 2: True}), ("slip", {0: False, 1: True, 2: False})):
        cell = f"pick_place__{name}__none"
        cells[cell] = {"task": "pick_place", "configuration": name, "level": "none", "variant": "base",
                       "overrides": suite["configurations"][name], "config": {"video": {"annotate": False}}}
        run_dir = out / "runs" / cell
        for seed, success in outcomes.items():
            result = _result(seed, success, run_dir).model_dump(mode="json")
            records.append({"cell": cell, "task": "pick_place", "configuration": name, "level": "none",
                            "variant": "base", "seed": seed, "session": 0, "result": result})
    report = build_report({"suite": suite, "cells": cells, "starts": []}, records)
    write_json(out / "results.json", report)
    (out / "results.md").write_text(markdown(report))
    (out / "suite.json").write_text(json.dumps({"suite": suite}))
    # The ledger stores every result in full; the viewer reads per-stage times from it.
    (out / "episodes.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    if plots:
        from benchmarks.harness.plots import latency_plot, success_plot

        success_plot(report, out / "success.png")
        latency_plot(report, out / "latency.png")
    return out


# ---------------------------------------------------------------------------- the web app, called in process

def asgi_get(app, path: str, query: str = "", headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """One GET through the ASGI app, with `path` exactly as a raw HTTP request line could carry it."""
    sent: list[dict] = []
    requested = False
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in {"host": "127.0.0.1:8765", **(headers or {})}.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8765)}

    async def call() -> None:
        finished = asyncio.Event()

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await finished.wait()  # the client stays connected until the whole response has arrived
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finished.set()

        await app(scope, receive, send)

    asyncio.run(asyncio.wait_for(call(), timeout=10))
    head = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def strict_json(body: bytes) -> Any:
    def refuse(name):
        raise AssertionError(f"not JSON: {name}")

    return json.loads(body, parse_constant=refuse)


def test_a_run_folder_gives_rows_and_each_episode_its_trace_video_and_images(tmp_path):
    folder = open_folder(make_run(tmp_path, {0: True, 1: False}))
    index = folder.index
    assert index["kind"] == "run" and index["summary"]["successes"] == 1
    assert index["stages"][:3] == ["reset", "render", "perception"]  # the loop's order, not the alphabet's
    failed = next(r for r in index["episodes"] if not r["success"])
    assert (failed["seed"], failed["failure_stage"], failed["failure_kind"], failed["failure_skill"]) == \
        (1, "control", "skill_failed", "place")
    assert failed["failure_reason"] == REASON and failed["latency"]["render"] == 1.5
    assert failed["kept"] == {"trace": True, "video": True, "images": 3}
    episode = folder.episode("", 1)
    assert [e["event"] for e in episode["trace"]] == ["reset", "decision", "safety", "skill", "fault", "result"]
    assert episode["trace"][-1]["failure"] == REASON
    assert episode["video_url"] == "/files/videos/seed_000001.mp4" and episode["video_annotated"] is True
    assert [i["name"] for i in episode["images"]] == ["perception0_front", "perception2_front", "perception10_front"]
    assert folder.episode("", 0)["video_url"] is None
    with pytest.raises(FmrobotError, match="no episode with seed 7"):
        folder.episode("", 7)


def test_a_suite_folder_gives_cells_with_wilson_intervals_plots_and_episodes(tmp_path):
    folder = open_folder(make_suite(tmp_path))
    (tmp_path / "success.png").write_bytes(b"png")
    index = folder.index
    slip = next(c for c in index["cells"] if c["configuration"] == "slip")
    assert (slip["successes"], slip["episodes"]) == (1, 3)
    low, high = slip["wilson_95"]
    assert 0.0 < low < 1 / 3 < high < 1.0
    assert [p["url"] for p in index["plots"]] == ["/files/success.png"]
    rows = [r for r in index["episodes"] if r["run"] == "pick_place__slip__none"]
    assert [r["success"] for r in rows] == [False, True, False]
    assert rows[0]["failure_kind"] == "skill_failed" and rows[0]["latency"]["simulation"] == 0.3  # from the ledger
    assert list(rows[0]["latency"])[:2] == ["reset", "render"]  # the ledger's sorted keys put back in order
    episode = folder.episode("pick_place__slip__none", 2)
    assert episode["trace"][-1]["failure"] == REASON
    assert episode["trace_url"] == "/files/runs/pick_place__slip__none/traces/seed_000002.jsonl"
    with pytest.raises(FmrobotError, match="unknown run"):
        folder.episode("../../etc", 0)


def test_a_folder_that_is_neither_gets_one_line_naming_what_was_expected_and_what_is_there(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "traces").mkdir()
    with pytest.raises(FmrobotError) as caught:
        open_folder(tmp_path)
    message = str(caught.value)
    assert "results.json" in message and "suite" in message and "notes.txt, traces/" in message
    (tmp_path / "results.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(FmrobotError, match=r"holds: a results.json with keys \['rows'\]"):
        open_folder(tmp_path)
    (tmp_path / "results.json").unlink()
    (tmp_path / "suite.json").write_text("{}")
    with pytest.raises(FmrobotError, match="without its report.*--report-only"):
        open_folder(tmp_path)
    assert main([str(tmp_path / "missing"), "--no-open"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing there" in err


def test_only_loopback_addresses_are_served(tmp_path, capsys):
    assert loopback("localhost") == "127.0.0.1" and loopback("127.0.0.2") == "127.0.0.2"
    for host in ("0.0.0.0", "192.168.1.4", "example.org", "::"):
        with pytest.raises(FmrobotError, match="refusing to serve"):
            loopback(host)
    assert main([str(make_run(tmp_path, {0: False})), "--host", "0.0.0.0", "--no-open"]) == 2
    assert "refusing to serve on '0.0.0.0'" in capsys.readouterr().err


def test_the_printed_address_takes_connections_at_once_and_a_busy_port_is_one_line():
    import socket

    sock = listen("127.0.0.1", 0)
    try:
        # Before any server runs: the connection waits in the queue instead of being refused.
        socket.create_connection(sock.getsockname(), timeout=2).close()
        with pytest.raises(FmrobotError, match=r"cannot listen on 127\.0\.0\.1:\d+: .*choose another --port"):
            listen("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_the_app_serves_the_api_and_the_folders_files_with_ranges_and_nothing_outside(tmp_path):
    from fmrobot.viewer.app import build_app

    run_dir = make_run(tmp_path / "run", {0: True, 1: False})
    (tmp_path / "secret.txt").write_text("outside")
    (run_dir / "escape.txt").symlink_to(tmp_path / "secret.txt")
    app = build_app(open_folder(run_dir))

    status, head, body = asgi_get(app, "/api/folder")
    assert status == 200 and strict_json(body)["kind"] == "run"
    status, _, body = asgi_get(app, "/api/episode", "seed=1")
    episode = strict_json(body)
    assert status == 200 and episode["trace"][-1]["failure"] == REASON
    status, _, body = asgi_get(app, "/api/episode", "seed=9")
    assert status == 404 and "no episode with seed 9" in strict_json(body)["error"]
    assert asgi_get(app, "/api/episode", "seed=x")[0] == 400

    status, head, body = asgi_get(app, episode["video_url"], headers={"range": "bytes=100-199"})
    assert status == 206 and body == VIDEO_BYTES[100:200]
    assert head["content-type"] == "video/mp4" and head["content-range"] == f"bytes 100-199/{len(VIDEO_BYTES)}"
    assert asgi_get(app, episode["images"][0]["url"])[1]["content-type"] == "image/png"
    status, head, body = asgi_get(app, "/")
    assert status == 200 and b'type="module"' in body and head["content-type"].startswith("text/html")
    assert asgi_get(app, "/static/app.js")[1]["content-type"].startswith(("text/javascript", "application/javascript"))

    for path in ("/files/../secret.txt", "/files/traces/../../secret.txt", "/files/escape.txt",
                 "/files//etc/passwd", "/static/../app.py", "/files/"):
        status, _, body = asgi_get(app, path)
        assert status == 404 and b"outside" not in body and b"root:" not in body, path
    assert asgi_get(app, "/api/folder", headers={"host": "attacker.example:8765"})[0] == 400


# ---------------------------------------------------------------------------- the page in headless Chromium

def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("the browser tests need Chromium: apt-get install -y --no-install-recommends chromium "
                    "(.ci/run installs it)")
    return found


class Viewer:
    """`python -m fmrobot.view <folder> --port 0 --no-open` in a subprocess, and its address."""

    def __init__(self, folder: Path):
        self.process = subprocess.Popen([sys.executable, "-m", "fmrobot.view", str(folder), "--port", "0", "--no-open"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.process.stdout.readline()
        assert " at http://127.0.0.1:" in line, line + self.process.stderr.read()
        self.url = line.split(" at ")[1].split()[0]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _browser_page(playwright, errors: list[str]):
    browser = playwright.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return browser, page


@pytest.mark.slow
def test_a_real_run_in_headless_chromium_filters_failures_plays_the_video_and_shows_the_reason(tmp_path):
    from playwright.sync_api import sync_playwright

    run_dir = tmp_path / "run"
    # Seeds 4 and 5 of pick_place with a grasp that slips half the time and no replan: one fails, one succeeds.
    done = subprocess.run(
        [sys.executable, "-m", "fmrobot.run", "task=pick_place", "perception=oracle", "planner=oracle", "seed=4",
         "episodes=2", "fault=grasp_slip", "fault.probability=0.5", "runner.max_replans=0", "video=all",
         "video.annotate=true", "annotate=true", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"), check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    episodes = json.loads((run_dir / "results.json").read_text())["episodes"]
    assert sorted(e["success"] for e in episodes) == [False, True], "the run must hold a success and a failure"
    failed = next(e for e in episodes if not e["success"])

    viewer, errors = Viewer(run_dir), []
    try:
        with sync_playwright() as playwright:
            browser, page = _browser_page(playwright, errors)
            page.goto(viewer.url)
            page.wait_for_selector("#episodes tbody tr[data-seed]")
            assert page.locator("#episodes tbody tr[data-seed]").count() == 2
            page.click("#episodes th[data-key=seed]")  # sorted by seed already: this click turns it descending
            assert page.locator("#episodes tbody tr[data-seed]").first.get_attribute("data-seed") == "5"
            page.select_option("#outcome-filter", "failure")
            rows = page.locator("#episodes tbody tr[data-seed]")
            assert rows.count() == 1 and rows.first.get_attribute("data-seed") == str(failed["seed"])
            page.fill("#text-filter", "no such words anywhere")
            assert page.locator("#episodes tbody tr[data-seed]").count() == 0
            page.fill("#text-filter", failed["failure"]["kind"])
            page.locator("#episodes tbody tr[data-seed]").first.click()

            page.wait_for_selector("#timeline li[data-event=result]")
            shown = page.locator("#timeline li[data-event=result] .failure-reason").inner_text()
            assert shown.strip() == failed["failure_reason"]
            assert failed["failure_reason"] in page.locator("#failure").inner_text()
            video = page.evaluate("""async () => {
                const v = document.getElementById("episode-video");
                await v.play();
                await new Promise((done) => setTimeout(done, 1200));
                return {time: v.currentTime, ready: v.readyState, error: v.error && v.error.code, src: v.currentSrc};
            }""")
            assert video["error"] is None and video["ready"] >= 2 and video["time"] > 0.3, video
            assert video["src"].endswith(f"/files/videos/seed_{failed['seed']:06d}.mp4")
            image = page.locator(".images img").first
            assert page.evaluate("(img) => img.complete && img.naturalWidth", image.element_handle()) > 0
            page.evaluate("document.getElementById('episode-video').pause()")
            page.screenshot(path=str(tmp_path / "episode.png"), full_page=True)
            browser.close()
    finally:
        viewer.close()
    assert (tmp_path / "episode.png").stat().st_size > 10_000
    assert errors == []


@pytest.mark.slow
def test_a_suite_in_headless_chromium_shows_its_intervals_plots_and_episodes(tmp_path):
    from playwright.sync_api import sync_playwright

    suite = make_suite(tmp_path / "suite", plots=True)
    report = json.loads((suite / "results.json").read_text())
    slip = next(c for c in report["cells"] if c["configuration"] == "slip")
    viewer, errors = Viewer(suite), []
    try:
        with sync_playwright() as playwright:
            browser, page = _browser_page(playwright, errors)
            page.goto(viewer.url)
            page.wait_for_selector("#cells tbody tr")
            row = page.locator("#cells tbody tr", has_text="slip")
            low, high = (round(100 * x) for x in slip["wilson_95"])
            assert f"{low}% – {high}%" in row.inner_text() and "1/3" in row.inner_text()
            page.wait_for_function("[...document.querySelectorAll('.plots img')].every(i => i.naturalWidth > 0)")
            assert page.locator(".plots img").count() == 2
            row.click()  # shows that cell's episodes
            assert page.locator("#episodes tbody tr[data-seed]").count() == 3
            page.select_option("#outcome-filter", "failure")
            page.locator("#episodes tbody tr[data-seed]").first.click()
            page.wait_for_selector("#timeline li[data-event=result] .failure-reason")
            assert page.locator("#timeline .failure-reason").inner_text().strip() == REASON
            page.screenshot(path=str(tmp_path / "suite_episode.png"), full_page=True)
            browser.close()
    finally:
        viewer.close()
    assert errors == []
