"""Message content as each kind of backend takes it: text-only backends refuse images, chat APIs get parts.

`Message.content` is a string or a tuple of text and image parts (fmrobot/interfaces.py). A backend
that reads text only calls `refuse_images` first and then uses `Message.text`; a vision backend turns
the parts into its own form (`openai_parts` for OpenAI-style servers, `template_parts` for a
processor's chat template).
"""

from __future__ import annotations

from typing import Any, Sequence

from fmrobot.errors import ImagesNotSupportedError
from fmrobot.interfaces import ImagePart, Message

VISION_BACKENDS = ("llm=transformers with an image-text-to-text model (a SmolVLM/Idefics3 or Qwen2-VL folder) or "
                   "llm=openai with a vision server (vLLM, llama.cpp with its mmproj, transformers serve)")


def refuse_images(backend: str, messages: Sequence[Message]) -> None:
    """ImagesNotSupportedError if any message holds an image: `backend` (e.g. "llm=smollm2") reads text only."""
    count = sum(len(m.images) for m in messages)
    if count:
        raise ImagesNotSupportedError(f"{backend} is text only and cannot read the {count} image(s) in its messages; "
                                      f"images need {VISION_BACKENDS}")


def all_images(messages: Sequence[Message]) -> list[ImagePart]:
    """Every image of the messages, in the order they appear."""
    return [image for m in messages for image in m.images]


def openai_parts(message: Message) -> str | list[dict[str, Any]]:
    """The message's `content` in an OpenAI chat request: a string stays a string; parts become
    `text` and `image_url` (a PNG data URL) parts."""
    if isinstance(message.content, str):
        return message.content
    return [{"type": "text", "text": part.text} if part.type == "text" else
            {"type": "image_url", "image_url": {"url": part.data_url()}} for part in message.content]


def template_parts(message: Message) -> list[dict[str, Any]]:
    """The message's content as the part list that transformers processors' chat templates read
    (`{"type": "image"}` marks where an image goes; the processor gets the images apart)."""
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}]
    return [{"type": "text", "text": part.text} if part.type == "text" else {"type": "image"}
            for part in message.content]
