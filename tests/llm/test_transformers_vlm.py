"""llm=transformers with image-text-to-text models: tiny random SmolVLM/Idefics3 and Qwen2-VL folders
built in code (fmrobot/llm/tiny_vlm.py), run with their processors."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from fmrobot.errors import ConfigError
from fmrobot.interfaces import ImagePart, Message, ReadsImages, TextPart
from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig
from fmrobot.llm.tiny_vlm import FAMILIES, cached_tiny_vlm


class Step(BaseModel):
    skill: Literal["pick", "place"]
    object: Literal["red block", "green bowl"]


class Verdict(BaseModel):
    steps: list[Step] = Field(min_length=1, max_length=3)
    success: bool
    reason: str = Field(max_length=12)


def scene_image(seed: int) -> ImagePart:
    return ImagePart.from_array(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8))


def ask(*images: ImagePart) -> list[Message]:
    return [Message(role="system", content="You watch a robot."),
            Message(role="user", content=(TextPart(text="Did the robot put the red block in the green bowl?"),
                                          *images))]


@pytest.fixture(scope="module", params=FAMILIES)
def vlm(request):
    return TransformersLM(TransformersLMConfig(model=str(cached_tiny_vlm(request.param)), max_new_tokens=160))


@pytest.mark.slow
def test_the_transformers_backend_runs_image_and_text_prompts(vlm):
    from fmrobot.llm.transformers_vlm import TransformersVLM

    assert isinstance(vlm, TransformersVLM) and isinstance(vlm, ReadsImages) and vlm.reads_images
    before = dict(vlm.stats)
    reply = vlm.generate(ask(scene_image(0), scene_image(1)))
    assert isinstance(reply, str) and 0 < vlm.stats["generated_tokens"] - before["generated_tokens"] <= 160
    # Each image became the model's image tokens in the prompt; the model read their pixels.
    image_tokens = vlm.stats["image_tokens"] - before["image_tokens"]
    assert vlm.stats["images"] - before["images"] == 2 and image_tokens > 0 and image_tokens % 2 == 0
    one = vlm.inputs(ask(scene_image(0)))
    assert int((one["input_ids"] == vlm._image_token_id).sum()) == image_tokens // 2
    # The pixels reach the model: another image changes its next-token distribution.
    import torch

    with torch.inference_mode():
        first = vlm.model(**one).logits[0, -1]
        other = vlm.model(**vlm.inputs(ask(scene_image(1)))).logits[0, -1]
    assert not torch.allclose(first, other)
    # Plain text messages still work, and text scoring too.
    assert isinstance(vlm.generate([Message(role="user", content="hello")]), str)
    scores = vlm.score("pick up the", [" red block", " green bowl"])
    assert len(scores) == 2 and all(s < 0 for s in scores) and scores[0] != scores[1]


@pytest.mark.slow
def test_constrained_decoding_gives_a_valid_answer_even_from_random_weights(vlm):
    for seed in range(3):
        answer = vlm.generate(ask(scene_image(seed)), Verdict)
        verdict = Verdict.model_validate_json(answer)  # raises if not JSON of the schema
        assert verdict.steps and len(verdict.reason) <= 12
    free = TransformersLM(TransformersLMConfig(model=vlm.config.model, max_new_tokens=8, constrained=False))
    assert not free.grammar_constrained and vlm.grammar_constrained


def test_a_folder_that_is_neither_a_causal_lm_nor_a_vlm_is_one_config_error(tmp_path):
    from transformers import CLIPConfig

    CLIPConfig().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=r"is a clip model \(.*\): neither a causal language model nor an "
                                          r"image-text-to-text model"):
        TransformersLM(TransformersLMConfig(model=str(tmp_path)))


def test_a_vlm_hub_id_not_in_the_cache_fails_offline_with_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="llm.model: 'HuggingFaceTB/SmolVLM-256M-Instruct' is a Hugging Face hub id"):
        TransformersLM(TransformersLMConfig(model="HuggingFaceTB/SmolVLM-256M-Instruct"))
