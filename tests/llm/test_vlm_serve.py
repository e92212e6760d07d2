"""The OpenAI-compatible backend sends an image to a real `transformers serve` process.

The server runs on loopback, offline, on the CPU, pinned to a tiny random vision-language
folder (fmrobot/llm/tiny_vlm.py), so requests name that folder as `model`. The reply is
noise from random weights; what is checked is that the image went through: the server's
prompt token count equals the local processor's for the same messages, image tokens and all.
"""

from __future__ import annotations

import numpy as np
import pytest

from fmrobot.interfaces import ImagePart, Message, TextPart
from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
from fmrobot.llm.transformers_lm import TransformersLMConfig
from fmrobot.llm.transformers_vlm import TransformersVLM
from tests.fakes import transformers_serve
from fmrobot.llm.tiny_vlm import FAMILIES, cached_tiny_vlm


@pytest.fixture(scope="module", params=FAMILIES)
def served(request, tmp_path_factory):
    """(base_url, folder) of a running `transformers serve` for the tiny `family` model."""
    folder = cached_tiny_vlm(request.param)
    with transformers_serve(folder, tmp_path_factory.mktemp("serve") / "serve.log") as base_url:
        yield base_url, folder


@pytest.mark.slow
def test_an_image_goes_to_transformers_serve_as_a_data_url_and_a_reply_comes_back(served):
    base_url, folder = served
    lm = OpenAICompatibleLM(OpenAICompatibleConfig(base_url=base_url, model=str(folder), api_key_env=None,
                                                   max_tokens=8, timeout=60.0))
    image = ImagePart.from_array(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    local = TransformersVLM(TransformersLMConfig(model=str(folder)))
    for messages in ([Message(role="user", content="What is on the table?")],
                     [Message(role="user", content=(TextPart(text="What is on the table?"), image))]):
        before = lm.stats["prompt_tokens"]
        reply = lm.generate(messages)
        assert isinstance(reply, str) and lm.stats["completion_tokens"] > 0
        assert lm.stats["prompt_tokens"] - before == local.inputs(messages)["input_ids"].shape[1]
    assert local.stats["image_tokens"] > 0 and lm.stats["requests"] == 2
