"""What a run imports: only what its chosen components use."""

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("open_clip", "transformers", "timm", "torch", "fmrobot.llm.smollm2", "fmrobot.llm.transformers_lm",
         "fmrobot.perception.clip")

# Runs `python -m fmrobot.run` in this interpreter, then lists which of HEAVY it imported.
PROBE = """
import json, runpy, sys
sys.argv = ["fmrobot.run", *sys.argv[1:]]
try:
    runpy.run_module("fmrobot.run", run_name="__main__")
except SystemExit as stop:
    assert not stop.code, stop.code
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def test_an_oracle_stack_imports_no_model_library_nor_language_model(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), "task=pick_place", "video=none",
                          "perception=oracle", "planner=oracle", f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert json.loads((tmp_path / "run" / "results.json").read_text())["episodes"][0]["success"]
