"""A Hugging Face hub id that cannot be loaded here fails at once, in one line that says what to do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fmrobot import hub
from fmrobot.errors import ConfigError

UNCACHED = "fmrobot-tests/no-such-model"


def test_local_paths_are_not_hub_ids(tmp_path):
    assert hub.is_local(str(tmp_path)) and hub.is_local("./model") and hub.is_local("~/models/x")
    assert not hub.is_local("google/owlvit-base-patch32") and not hub.is_local("gpt2")


def test_offline_an_uncached_id_is_refused_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=0: pytest.fail("probed the network offline"))
    with pytest.raises(ConfigError, match=rf"^perception.model: '{UNCACHED}' is a Hugging Face hub id that is not "
                                          r"in the local cache, and HF_HUB_OFFLINE is set; set perception.model to "
                                          r"a local folder"):
        hub.check_hub_model(UNCACHED, "perception.model")


def test_an_unreachable_hub_is_named_with_its_reason(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(ConfigError, match=r"the hub \(http://127.0.0.1:9\) is unreachable \(.+\); set llm.model"):
        hub.check_hub_model(UNCACHED, "llm.model")


def test_a_local_folder_is_not_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.check_hub_model(str(tmp_path), "llm.model")  # loading it may fail later, in the loader's words


@pytest.mark.parametrize("overrides, option", [
    (["perception=owlvit"], "perception.model"),
    pytest.param(["llm=transformers", "planner=llm_scoring"], "llm.model", marks=pytest.mark.slow),
    pytest.param(["llm=smollm2", "llm.source=hub"], "llm.source=hub", marks=pytest.mark.slow),
])
def test_the_run_fails_with_one_line_before_any_model_library_loads(tmp_path, overrides, option):
    done = subprocess.run([sys.executable, "-m", "fmrobot.run", *overrides, "video=none",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True,
                          check=False, timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert errors[0].startswith(f"fmrobot: error: {option}: ") and "HF_HUB_OFFLINE is set" in errors[0]
    # What makes it fast (timed by benchmarks/offline_failure.py): the check runs when the config is validated,
    # before any model library loads.
    probe = ("import sys; from fmrobot.compose import compose; from fmrobot.stack import resolve_components; "
             "from omegaconf import OmegaConf\n"
             f"cfg = compose('run', {overrides!r})\n"
             "config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != 'hydra']), "
             "resolve=True)\n"
             "try:\n    resolve_components(config)\nexcept Exception as error:\n    print(type(error).__name__)\n"
             "print('transformers' in sys.modules, 'open_clip' in sys.modules)")
    checked = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120,
                             env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    assert checked.stdout.split() == ["ConfigError", "False", "False"], checked.stderr[-2000:]
