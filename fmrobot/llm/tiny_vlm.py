"""Tiny random vision-language models, built in code and saved as hub-style folders (no hub, no download):
what the tests and the VLM benchmark (benchmarks/vlm_suite.py) run where no VLM weights can be had.

Two families, each with a processor, an image processor and a tokenizer saved beside the weights,
so that `AutoProcessor` / `AutoModelForImageTextToText` (and `transformers serve`) load them as
they would a real checkpoint:
- `idefics3`: the SmolVLM / Idefics3 layout (SigLIP-style vision tower, pixel shuffle, Llama text model);
- `qwen2_vl`: the Qwen2-VL layout (patch-merging vision tower, M-RoPE Qwen2 text model).

The tokenizer is a byte-level BPE trained here on a few sentences, with each family's special
tokens and a chat template of the family's format. Weights are random: answers are noise, which
is what the tests need to show that constrained decoding still yields valid JSON.

    folder = tiny_vlm("qwen2_vl", tmp_path)   # or cached_tiny_vlm("qwen2_vl"): built once per process
"""

from __future__ import annotations

import tempfile
from pathlib import Path

IMAGE_SIDE = 32  # the side the tiny image processors work at
_TRAINING_TEXT = [
    "pick up the red block and place it on the blue plate",
    "put the green cube in the bowl; the yellow mug is on the table",
    '{"steps": [{"skill": "pick", "args": {"object": "red block"}}], "done": true, "success": false}',
    "User: what is in the image? Assistant: a robot arm, a table, a cup and a sponge.",
    "0123456789 , . : ; ! ? ( ) [ ] { } \" ' - _ / yes no true false null",
]
# family -> the tokens its processor and chat template read as single tokens
_SPECIAL = {
    "idefics3": ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                 "<global-img>"] + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)],
    "qwen2_vl": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"],
}
# Chat templates in each family's format: a part list or a plain string as content.
_TEMPLATES = {
    "idefics3": (
        "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
        "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"),
    "qwen2_vl": (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ part['text'] }}"
        "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
}
FAMILIES = tuple(_SPECIAL)


def tiny_tokenizer(family: str):
    """A byte-level BPE tokenizer (any text encodes) with the family's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = _SPECIAL[family]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_TRAINING_TEXT, trainer)
    end = "<end_of_utterance>" if family == "idefics3" else "<|im_end|>"
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=end, pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>", unk_token=None, chat_template=_TEMPLATES[family],
                                   additional_special_tokens=special[1:])


def tiny_vlm(family: str, folder: Path) -> Path:
    """Build the tiny `family` model ("idefics3" or "qwen2_vl") with its processor and save it in `folder`."""
    import torch

    if family not in _SPECIAL:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(family)
    model, processor = (_idefics3 if family == "idefics3" else _qwen2_vl)(tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _idefics3(tokenizer):
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor,
                              Idefics3Processor, Idefics3VisionConfig, LlamaConfig)

    patch, scale = 8, 2
    image_seq_len = (IMAGE_SIDE // patch) ** 2 // scale ** 2  # tokens per image after the pixel shuffle
    vocab = len(tokenizer)
    text = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    vision = Idefics3VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  image_size=IMAGE_SIDE, patch_size=patch)
    config = Idefics3Config(text_config=text, vision_config=vision, scale_factor=scale,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    model = Idefics3ForConditionalGeneration(config)
    images = Idefics3ImageProcessor(size={"longest_edge": 2 * IMAGE_SIDE}, max_image_size={"longest_edge": IMAGE_SIDE},
                                    do_image_splitting=False)
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=image_seq_len,
                                  chat_template=_TEMPLATES["idefics3"])
    return model, processor


def _qwen2_vl(tokenizer):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    patch, merge = 4, 2
    vocab = len(tokenizer)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in
           [("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}
    # head_dim 16: M-RoPE's three sections (time, height, width) share its 8 rotary frequencies
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, max_position_embeddings=2048,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id)
    vision = dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=patch,
                  spatial_merge_size=merge, temporal_patch_size=2, in_channels=3)
    config = Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    model = Qwen2VLForConditionalGeneration(config)
    pixels = IMAGE_SIDE * IMAGE_SIDE
    sizes = dict(patch_size=patch, merge_size=merge, temporal_patch_size=2, min_pixels=pixels // 4, max_pixels=pixels,
                 size={"shortest_edge": pixels // 4, "longest_edge": pixels})
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(**sizes), chat_template=_TEMPLATES["qwen2_vl"])
    return model, processor


_BUILT: dict[str, Path] = {}


def cached_tiny_vlm(family: str) -> Path:
    """The tiny `family` model, built once per test session into a temporary folder."""
    if family not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix=f"fmrobot-tiny-{family}-"))
        _BUILT[family] = tiny_vlm(family, root / family)
    return _BUILT[family]
