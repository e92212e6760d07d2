"""CLIP text embeddings kept between runs: reused, rebuilt when an input changes or the file breaks,
and with them cached, the default model's text tower (open_clip, transformers) never loads."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fmrobot import registry
from fmrobot.cache import entry_path
from fmrobot.perception.clip import TEXT_CACHE

LABELS = ["red block", "green bowl"]


def build(cache_dir, **options):
    return registry.resolve("perception", {"name": "clip", "cache_dir": str(cache_dir), **options}).build()


def entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / TEXT_CACHE).glob("*.safetensors"))


def test_embeddings_are_reused_and_equal_what_the_text_tower_gives(tiny_clip_dir, tmp_path):
    computed = build(tmp_path, model=str(tiny_clip_dir)).text_embeddings(LABELS)
    assert len(entries(tmp_path)) == 1
    again = build(tmp_path, model=str(tiny_clip_dir))
    again.clip._load_text = None  # a hit must not need the text tower
    again.clip._model = None
    assert torch.equal(again.text_embeddings(LABELS), computed)


def test_changed_inputs_miss(tiny_clip_dir, tmp_path):
    build(tmp_path, model=str(tiny_clip_dir)).text_embeddings(LABELS)
    build(tmp_path, model=str(tiny_clip_dir)).text_embeddings([*LABELS, "blue block"])
    build(tmp_path, model=str(tiny_clip_dir), prompt_templates=["a {}"]).text_embeddings(LABELS)
    assert len(entries(tmp_path)) == 3
    # Other weights: another key, and embeddings of those weights.
    other = tmp_path / "other"
    shutil.copytree(tiny_clip_dir, other)
    from safetensors.torch import load_file, save_file

    state = load_file(str(other / "open_clip_model.safetensors"))
    state["text_projection"] = state["text_projection"] * 2 + 0.1
    save_file(state, str(other / "open_clip_model.safetensors"))
    changed = build(tmp_path, model=str(other)).text_embeddings(LABELS)
    assert len(entries(tmp_path)) == 4
    assert not torch.equal(changed, build(tmp_path, model=str(tiny_clip_dir)).text_embeddings(LABELS))


def test_a_corrupt_entry_is_rebuilt(tiny_clip_dir, tmp_path):
    expected = build(tmp_path, model=str(tiny_clip_dir)).text_embeddings(LABELS)
    (path,) = entries(tmp_path)
    path.write_bytes(path.read_bytes()[:-8])  # truncated
    perceptor = build(tmp_path, model=str(tiny_clip_dir))
    assert torch.equal(perceptor.text_embeddings(LABELS), expected)
    assert perceptor.clip.text_loaded  # recomputed, not read
    assert entry_path(TEXT_CACHE, perceptor._disk_key(LABELS, True), str(tmp_path)) == path
    assert torch.equal(build(tmp_path, model=str(tiny_clip_dir)).text_embeddings(LABELS), expected)


PROBE = """
import json, sys
from fmrobot import registry
perceptor = registry.resolve("perception", {"name": "clip", "cache_dir": sys.argv[1]}).build()
perceptor.text_embeddings(sys.argv[2:]); perceptor.text_embeddings(sys.argv[2:], ground=False)
print(json.dumps([m for m in ("open_clip", "transformers") if m in sys.modules]))
"""


@pytest.mark.slow
def test_with_its_vocabulary_cached_the_shipped_model_loads_no_text_tower(tmp_path):
    def imported() -> list[str]:
        out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), *LABELS], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).parents[2])
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert set(imported()) == {"open_clip", "transformers"}  # the first run embeds with the text tower
    assert imported() == []
