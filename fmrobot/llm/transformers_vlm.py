"""Image-text-to-text models through transformers (`llm=transformers` given a vision-language model).

`TransformersLM(config)` builds this backend when `config.model` (a hub id or a local folder) is
of a family that `AutoModelForImageTextToText` loads (SmolVLM/Idefics3, Qwen2-VL and Qwen2.5-VL,
Gemma 3, LLaVA, ...), so one name, `llm=transformers`, serves text and vision models. The model
loads with its processor (`AutoProcessor`): the processor's chat template lays out the turns and
marks where each image goes; the processor resizes the images and expands each mark into the
model's image tokens.

generate(messages, schema): greedy. With a schema (and `constrained`), every step is masked to
the schema's JSON grammar (xgrammar, fmrobot/llm/constrained.py), so the answer parses and
validates by construction unless `max_new_tokens` cuts it off; unlike the text backend, forced
tokens are not batched into one pass (they count against `max_new_tokens`).

score(prompt, continuations) reads text only, one forward pass per continuation (no prefix
cache): planners that score with a VLM work, but slower than with the text backend.
"""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel

from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message
from fmrobot.llm.content import all_images, template_parts
from fmrobot.llm.transformers_lm import TransformersLMConfig


def is_vision_language_model(model: str) -> bool:
    """Whether `model` is an image-text-to-text model; False also when its config cannot be read (the
    causal loader then says why). ConfigError for a model that is neither that nor a causal LM."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)

    try:
        config = AutoConfig.from_pretrained(model)
    except Exception:
        return False
    kind = getattr(config, "model_type", "")
    if kind in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return True
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return False
    architectures = ", ".join(getattr(config, "architectures", None) or ["no architectures"])
    raise ConfigError(f"llm.model {model!r} is a {kind or 'model of unknown type'} model ({architectures}): neither a "
                      "causal language model nor an image-text-to-text model, which are what llm=transformers runs")


def load_vision_language_model(model: str, dtype: str = "float32", device: str = "cpu"):
    """Processor and model, or one ConfigError that says what failed."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as transformers_logging

    bar = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # it would print over the run's own progress bar
    try:
        processor = AutoProcessor.from_pretrained(model)
        vlm = AutoModelForImageTextToText.from_pretrained(model, dtype=getattr(torch, dtype))
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"could not load vision-language model {model!r}: {type(error).__name__}: {first}. Without "
                          "a model hub, give a local folder holding the model and its processor (save_pretrained of "
                          "both)") from error
    finally:
        if bar:
            transformers_logging.enable_progress_bar()
    if getattr(processor, "tokenizer", None) is None or getattr(processor, "image_processor", None) is None:
        raise ConfigError(f"the processor of {model!r} ({type(processor).__name__}) has no tokenizer or no image "
                          "processor: the folder needs the processor files that save_pretrained writes")
    return processor, vlm.to(device).eval()


class TransformersVLM:
    """`LanguageModel` that reads images: a transformers image-text-to-text model and its processor."""

    Config = TransformersLMConfig
    reads_images = True

    @classmethod
    def check_sources(cls, config: TransformersLMConfig) -> None:
        from fmrobot.hub import check_hub_model

        check_hub_model(config.model, "llm.model")

    def __init__(self, config: TransformersLMConfig):
        import torch

        if config.gguf_file is not None:
            raise ConfigError("llm.gguf_file: transformers reads GGUF files of text models only; give the "
                              "vision-language model's folder (save_pretrained) without gguf_file")
        TransformersVLM.check_sources(config)
        self.config = config
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.processor, self.model = load_vision_language_model(config.model, config.dtype, config.device)
        self.tokenizer = self.processor.tokenizer
        image_token = getattr(self.processor, "image_token", None)
        self._image_token_id = getattr(self.processor, "image_token_id", None) or (
            self.tokenizer.convert_tokens_to_ids(image_token) if image_token else None)
        self._grammars = None  # made on the first constrained generate
        self.stats = {"prompt_tokens": 0, "image_tokens": 0, "images": 0, "generated_tokens": 0,
                      "generate_passes": 0}

    @property
    def grammar_constrained(self) -> bool:
        """generate() with a schema decodes under its grammar (planners may pick a terser JSON form)."""
        return self.config.constrained

    # ------------------------------------------------------------------ LanguageModel

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str:
        """Greedy reply to text and image messages; with a schema (and `constrained`), JSON that validates."""
        import torch

        inputs = self.inputs(messages)
        length = int(inputs["input_ids"].shape[1])
        options = {}
        if schema is not None and self.config.constrained:
            from transformers import LogitsProcessorList

            from fmrobot.llm.constrained import GrammarLogitsProcessor

            grammars = self._grammar()
            options["logits_processor"] = LogitsProcessorList(
                [GrammarLogitsProcessor(grammars, schema.model_json_schema(), length)])
            options["eos_token_id"] = sorted(grammars.stop)  # the grammar ends on these: so must generation
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id, **options)
        new = out[0, length:]
        self.stats["generated_tokens"] += int(new.numel())
        self.stats["generate_passes"] += int(new.numel())
        return self.tokenizer.decode(new, skip_special_tokens=True)

    def inputs(self, messages: Sequence[Message]) -> dict:
        """The processor's model inputs for the messages: the chat template's text with each image's
        tokens, and the images' pixels (as the model's own family lays them out)."""
        chat = [{"role": m.role, "content": template_parts(m)} for m in messages]
        text = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        images = [image.to_pil() for image in all_images(messages)]
        inputs = self.processor(text=[text], images=[images] if images else None, return_tensors="pt")
        inputs = {key: value.to(self.model.device) for key, value in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        ids = inputs["input_ids"][0]
        self.stats["prompt_tokens"] += int(ids.numel())
        self.stats["images"] += len(images)
        if self._image_token_id is not None:
            self.stats["image_tokens"] += int((ids == self._image_token_id).sum())
        return inputs

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation's tokens after the prompt (text only, no images)."""
        import torch

        prompt_ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        if not prompt_ids:
            raise ValueError("score() needs a non-empty prompt")
        scores = []
        for text in continuations:
            piece = self.tokenizer(text, add_special_tokens=False).input_ids
            if not piece:
                raise ValueError("every continuation must have at least one token")
            ids = torch.tensor([prompt_ids + piece], device=self.model.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float().cpu()
            logp = torch.log_softmax(logits[len(prompt_ids) - 1:-1], dim=-1)
            scores.append(float(logp.gather(1, torch.tensor(piece)[:, None]).sum()))
        return scores

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _grammar(self):
        if self._grammars is None:
            from fmrobot.llm.constrained import grammars_for

            width = self.model.get_output_embeddings().weight.shape[0]  # the logits' width
            self._grammars = grammars_for(self.tokenizer, width)
        return self._grammars
