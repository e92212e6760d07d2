"""Messages that mix text and images: the shared types every backend reads."""

from __future__ import annotations

import numpy as np
import pytest

from fmrobot.interfaces import ImagePart, Message, TextPart


def test_image_parts_round_trip_scale_down_and_ride_in_messages():
    rgb = np.zeros((40, 80, 3), dtype=np.uint8)
    rgb[:, 40:, 0] = 255  # right half red: the scaled image must keep where things are
    part = ImagePart.from_array(rgb)
    assert (part.width, part.height) == (80, 40)
    assert np.array_equal(part.to_array(), rgb)
    assert part.data_url().startswith("data:image/png;base64,")

    small = ImagePart.from_array(rgb, max_side=20)
    assert (small.width, small.height) == (20, 10)
    back = small.to_array()
    assert back.shape == (10, 20, 3) and back[5, 15, 0] == 255 and back[5, 2, 0] == 0

    with pytest.raises(ValueError, match="HxWx3 uint8"):
        ImagePart.from_array(rgb.astype(np.float32))

    message = Message(role="user", content=(TextPart(text="Where is "), part, TextPart(text="the cube?")))
    assert message.text == "Where is the cube?" and message.images == (part,)
    plain = Message(role="user", content="just text")
    assert plain.text == "just text" and plain.images == ()
    # parts come back by their `type` from plain data (a trace, a JSON file)
    again = Message.model_validate(message.model_dump())
    assert again == message and isinstance(again.content[1], ImagePart)
    assert Message.model_validate_json(message.model_dump_json()) == message


def camera_message() -> Message:
    rgb = np.full((16, 24, 3), 90, dtype=np.uint8)
    return Message(role="user", content=(TextPart(text="Is the red block in the bowl?"), ImagePart.from_array(rgb)))


def test_a_text_only_backend_refuses_images_in_one_line_and_takes_text_parts(tiny_lm_dir):
    from fmrobot.errors import ImagesNotSupportedError
    from fmrobot.interfaces import ReadsImages
    from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig

    lm = TransformersLM(TransformersLMConfig(model=tiny_lm_dir, max_new_tokens=4))
    assert type(lm) is TransformersLM and isinstance(lm, ReadsImages) and not lm.reads_images
    with pytest.raises(ImagesNotSupportedError) as refused:
        lm.generate([camera_message()])
    message = str(refused.value)
    assert "\n" not in message and message.startswith("llm=transformers (a causal LM) is text only")
    assert "1 image(s)" in message and "llm=openai with a vision server" in message
    # Text in parts is as good as a string: the same prompt tokens either way.
    lm.tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    parts = Message(role="user", content=(TextPart(text="put the red "), TextPart(text="block")))
    assert lm._chat_ids([parts]) == lm._chat_ids([Message(role="user", content="put the red block")])


def test_the_openai_backend_sends_images_as_data_url_parts_and_text_as_strings():
    from fmrobot.errors import ImagesNotSupportedError
    from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
    from tests.fakes import LoopbackServer, chat_reply, read_json, send_json

    class Recording(LoopbackServer):
        def __init__(self):
            super().__init__()
            self.bodies: list[dict] = []

        def handle_post(self, request):
            self.bodies.append(read_json(request))
            send_json(request, 200, chat_reply("yes"))

    image = camera_message()
    with Recording() as server:
        lm = OpenAICompatibleLM(OpenAICompatibleConfig(base_url=server.base_url, model="vlm", api_key_env=None,
                                                       retries=0))
        assert lm.reads_images
        assert lm.generate([Message(role="system", content="Answer yes or no."), image]) == "yes"
    system, user = server.bodies[0]["messages"]
    assert system == {"role": "system", "content": "Answer yes or no."}  # text-only messages as before
    assert user["content"][0] == {"type": "text", "text": "Is the red block in the bowl?"}
    assert user["content"][1] == {"type": "image_url", "image_url": {"url": image.images[0].data_url()}}

    text_only = OpenAICompatibleLM(OpenAICompatibleConfig(base_url=server.base_url, model="vlm", images=False))
    assert not text_only.reads_images
    with pytest.raises(ImagesNotSupportedError, match="^llm=openai with images: false is text only"):
        text_only.generate([image])  # refused before any request


def test_length_bounded_strings_decode_without_control_characters():
    import json

    import xgrammar
    from xgrammar.testing import _is_grammar_accept_string

    from fmrobot.llm.constrained import _json_strings

    schema = {"type": "object", "properties": {"note": {"type": "string", "maxLength": 5},
                                               "label": {"type": "string", "enum": ["red block"], "maxLength": 9}},
              "required": ["note"]}
    rewritten = _json_strings(schema)
    assert rewritten["properties"]["label"] == schema["properties"]["label"]  # an enum is already exact
    grammar = xgrammar.Grammar.from_json_schema(json.dumps(rewritten), any_whitespace=False, strict_mode=True)
    accepts = [_is_grammar_accept_string(grammar, text) for text in
               ('{"note": "a b.c"}', '{"note": "a\x18b"}', '{"note": "abcdef"}')]
    assert accepts == [True, False, False]  # xgrammar 0.2.9 takes the raw control character without the rewrite
