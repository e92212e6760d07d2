"""llm=transformers: causal language models through transformers: hub id, local folder, or GGUF file.

Scoring is the planner's hot path, so it does not re-read what it has seen: the
key-value caches of a few prompt prefixes are kept (least recently used first out), a
scoring call resumes from the longest cached prefix (the few-shot examples that do not
change between decisions), and the rest of each prompt and all its continuations run in
one forward pass over that cache as a token tree, instead of one full forward per
candidate.

Generation with a schema is grammar-constrained (`constrained`, on by default): the
answer parses and validates by construction, the tokens the grammar forces run in one
forward pass with the next chosen token (fmrobot/llm/constrained.py), and the prompt
resumes from the same prefix caches: each prompt is kept whole, so a planner's fixed
system prompt and few-shot example are read once, and a replan or re-prompt of the same
question reads only the lines it adds.
"""

from __future__ import annotations

import copy
import inspect
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message
from fmrobot.llm.content import refuse_images

_MIN_VOCABULARY = 100  # offline, a tokenizer without its files can load with a handful of tokens


class TransformersLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str  # Hugging Face hub id or local folder
    gguf_file: str | None = None  # a .gguf file inside `model` (transformers dequantizes it)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    threads: int | None = Field(default=1, ge=1)  # torch.set_num_threads (process-wide) when set
    max_new_tokens: int = Field(default=256, ge=1)  # constrained: the tokens the model chooses (forced ones are free)
    prefix_cache_size: int = Field(default=4, ge=0)  # prompts whose key-value cache is kept
    device: str = "cpu"
    # generate() with a schema masks every token to the schema's grammar (xgrammar); False:
    # free text, which callers validate and re-prompt
    constrained: bool = True


def load_causal_lm(model: str, gguf_file: str | None = None, dtype: str = "float32", device: str = "cpu"):
    """Tokenizer and model, or one ConfigError that says what failed and what to do."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as transformers_logging

    what = f"{model!r}" + (f" (gguf_file={gguf_file!r})" if gguf_file else "")
    # Its "Loading weights" bar takes a fraction of a second and would print over the run's own progress bar.
    bar = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
        lm = AutoModelForCausalLM.from_pretrained(model, gguf_file=gguf_file, dtype=getattr(torch, dtype))
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"could not load language model {what}: {type(error).__name__}: {first}. Without a model hub, give a "
            "local folder written by save_pretrained, or a folder holding the .gguf file and its name in gguf_file"
        ) from error
    finally:
        if bar:
            transformers_logging.enable_progress_bar()
    if len(tokenizer) < _MIN_VOCABULARY:
        raise ConfigError(f"the tokenizer of {what} loaded with {len(tokenizer)} tokens: its files are missing")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, lm.to(device).eval()


def save_converted(source: Path, target: Path, model_class: str, config_class: str) -> Path:
    """Load the GGUF file `source` through transformers (dequantizing it), rebuild it as a plain
    `model_class` (a transformers class name; a GGUF-loaded model refuses save_pretrained), and save it
    with its tokenizer as the folder `target`. The folder appears whole or not at all: it is written
    beside and renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        tokenizer, gguf_model = load_causal_lm(str(source.parent), source.name)
        _plain_model(gguf_model, model_class, config_class).save_pretrained(work)
        tokenizer.save_pretrained(work)
        try:
            work.rename(target)
        except OSError:
            if not (target / "config.json").is_file():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _plain_model(gguf_model, model_class: str, config_class: str):
    """A `model_class` with the GGUF model's dequantized weights in float32, which can be saved."""
    import torch
    import transformers

    settings = gguf_model.config.to_dict()
    settings.pop("quantization_config", None)
    settings["architectures"] = [model_class]
    settings["dtype"] = "float32"
    plain = getattr(transformers, model_class)(getattr(transformers, config_class).from_dict(settings))
    plain.load_state_dict(gguf_model.state_dict())
    return plain.to(torch.float32).eval()


class TransformersLM:
    """`LanguageModel` over a transformers causal LM.

    Given an image-text-to-text model (config.json of a vision-language family), `TransformersLM(config)`
    builds a `TransformersVLM` instead (fmrobot/llm/transformers_vlm.py): `llm=transformers` serves both.
    """

    Config = TransformersLMConfig
    reads_images = False  # text only: generate() refuses messages with images (ImagesNotSupportedError)
    backend_name = "llm=transformers (a causal LM)"

    def __new__(cls, *args, **kwargs):
        config = args[0] if args else kwargs.get("config")
        loads = len(args) < 3 and kwargs.get("model") is None  # not handed a ready model
        if cls is TransformersLM and loads and isinstance(config, TransformersLMConfig) and config.gguf_file is None:
            from fmrobot.llm.transformers_vlm import TransformersVLM, is_vision_language_model

            TransformersLM.check_sources(config)
            if is_vision_language_model(config.model):
                return TransformersVLM(config)  # not a TransformersLM: Python does not call __init__ again
        return super().__new__(cls)

    @classmethod
    def check_sources(cls, config: TransformersLMConfig) -> None:
        """Before anything is built: a hub id that cannot be loaded here fails in seconds, not minutes."""
        from fmrobot.hub import check_hub_model

        model = getattr(config, "model", None)  # subclasses with shipped weights have none to check
        if isinstance(model, str):
            check_hub_model(model, "llm.model")

    def __init__(self, config: TransformersLMConfig, tokenizer=None, model=None):
        import torch

        if model is None:
            TransformersLM.check_sources(config)  # this config's model; subclasses check their own configs
        self.config = config
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        if model is None:
            tokenizer, model = load_causal_lm(config.model, config.gguf_file, config.dtype, config.device)
        self.tokenizer, self.model = tokenizer, model
        self._prefixes: OrderedDict[tuple[int, ...], tuple[object, object]] = OrderedDict()
        self.stats = {"prompt_tokens": 0, "cached_tokens": 0, "continuation_tokens": 0, "tree_tokens": 0,
                      "generated_tokens": 0, "forced_tokens": 0, "generate_passes": 0}
        self._grammars = None  # made on the first constrained generate (reading the vocabulary takes ~0.1 s)
        # Most causal LMs can skip the vocabulary projection for positions nobody reads.
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        # transformers 5 renamed forward's `past_key_values` to `cache`; the old name warns on every call.
        self._cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @property
    def grammar_constrained(self) -> bool:
        """generate() with a schema decodes under its grammar (planners may pick a terser JSON form)."""
        return self.config.constrained

    # ------------------------------------------------------------------ LanguageModel

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation's tokens after the prompt.

        The prompt and each continuation are tokenized apart, so a continuation should
        bring its own leading space (" pick up the red block"). All continuations run in
        one forward pass as a token tree after the cached prompt: shared leading tokens
        (" pick up the") appear once, and an attention mask lets each token see the prompt
        and its own ancestors only (tree attention, as in speculative decoding).
        """
        return self.score_many([(prompt, continuations)])[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """`score` for several prompts in one forward pass.

        The prompts' common token prefix comes from the key-value cache; what follows it in
        each prompt joins the token tree as a branch that its continuations grow from. A
        planner that scores its options after the instruction and after a content-free
        one pays for one pass, not two.
        """
        import torch

        asked = [(prompt, list(continuations)) for prompt, continuations in requests]
        requests = [(prompt, continuations) for prompt, continuations in asked if continuations]
        if len(requests) < len(asked):  # nothing to score for some: answer them with []
            answers = iter(self.score_many(requests) if requests else [])
            return [next(answers) if continuations else [] for _, continuations in asked]
        prompts = [self.tokenizer(prompt, add_special_tokens=False).input_ids for prompt, _ in requests]
        if any(not ids for ids in prompts):
            raise ValueError("score() needs a non-empty prompt")
        conts = [[self.tokenizer(c, add_special_tokens=False).input_ids for c in cs] for _, cs in requests]
        if any(not piece for cs in conts for piece in cs):
            raise ValueError("every continuation must have at least one token")
        shared = prompts[0]
        for ids in prompts[1:]:
            shared = shared[:common_prefix(shared, ids)]
        if not shared:  # nothing in common to attend to: one pass per prompt
            return [self.score_many([request])[0] for request in requests]
        # Start from what the cache already holds of it (a new prompt's few-shot part), so
        # the rest of each prompt runs inside the same pass as the continuations.
        cached = max((common_prefix(key, shared) for key in self._prefixes), default=0)
        base = shared[:cached] if cached else shared
        cache, last_logits = self._prompt_state(base)
        start = len(base)
        rests = [ids[start:] for ids in prompts]
        tree = _TokenTree([rest + piece for rest, cs in zip(rests, conts) for piece in cs])
        inner = [i for i in range(len(tree.tokens)) if tree.has_children[i]]
        logp_rows = torch.log_softmax(last_logits[0], dim=-1)  # (1, vocabulary): the shared prefix's last step
        if inner:
            width = len(tree.tokens)
            dtype = self.model.dtype
            mask = torch.full((1, 1, width, start + width), torch.finfo(dtype).min, dtype=dtype)
            mask[..., :start] = 0
            for row, ancestors in enumerate(tree.ancestors):
                mask[0, 0, row, [start + a for a in ancestors]] = 0
            extra = {"logits_to_keep": torch.tensor(inner)} if self._keeps_logits else {}
            try:
                with torch.inference_mode():
                    out = self.model(input_ids=torch.tensor([tree.tokens], device=self.model.device),
                                     attention_mask=mask.to(self.model.device),
                                     position_ids=torch.tensor([[start + d for d in tree.depth]],
                                                               device=self.model.device),
                                     **{self._cache_kwarg: cache}, use_cache=True, **extra)
            finally:
                cache.crop(-(cache.get_seq_length() - start))  # the cached prefix stays as it was
            logits = out.logits[0].float().cpu()
            if not self._keeps_logits:
                logits = logits[inner]
            logp_rows = torch.cat([logp_rows, torch.log_softmax(logits, dim=-1)])
        row_of = {node: 1 + k for k, node in enumerate(inner)}  # node -> its row of next-token log-probs
        results, paths = [], iter(tree.paths)
        for rest, cs in zip(rests, conts):
            scores = []
            for _ in cs:
                path, total, row = next(paths), 0.0, 0
                for k, node in enumerate(path):
                    if k >= len(rest):  # the prompt's own tokens are context, not score
                        total += float(logp_rows[row, tree.tokens[node]])
                    row = row_of.get(node, -1)  # only a leaf has none, and a leaf ends its path
                scores.append(total)
            results.append(scores)
        self.stats["prompt_tokens"] += sum(len(rest) for rest in rests)
        self.stats["continuation_tokens"] += sum(len(p) for cs in conts for p in cs)
        self.stats["tree_tokens"] += len(tree.tokens)
        return results

    def score_naive(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """The reference: one full forward over prompt + continuation per candidate, no cache.

        Same numbers as `score` (to rounding); kept for tests and the speed benchmark.
        """
        import torch

        prompt_ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        out = []
        for text in continuations:
            piece = self.tokenizer(text, add_special_tokens=False).input_ids
            ids = torch.tensor([prompt_ids + piece], device=self.model.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, use_cache=False).logits[0].float().cpu()
            logp = torch.log_softmax(logits[len(prompt_ids) - 1:-1], dim=-1)
            out.append(float(logp.gather(1, torch.tensor(piece)[:, None]).sum()))
        return out

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str:
        """Greedy chat completion. With a schema (and `constrained`), decoding follows the schema's
        grammar, so the answer is JSON that validates against it; without, free text."""
        import torch

        refuse_images(self.backend_name, messages)
        if schema is not None and self.config.constrained:
            return self._generate_constrained(messages, schema)
        ids = self._chat_ids(messages)
        with torch.inference_mode():
            out = self.model.generate(input_ids=torch.tensor([ids], device=self.model.device),
                                      attention_mask=torch.ones(1, len(ids), dtype=torch.long,
                                                                device=self.model.device),
                                      max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[0, len(ids):]
        self.stats["generated_tokens"] += int(new.numel())
        self.stats["generate_passes"] += int(new.numel())
        return self.tokenizer.decode(new, skip_special_tokens=True)

    def _generate_constrained(self, messages: Sequence[Message], schema: type[BaseModel]) -> str:
        """Greedy decoding under the schema's grammar, one forward pass per real choice.

        The prompt and the answer's forced opening run as one cached prompt (resumed from
        the kept prompt it shares most with); after that each pass feeds the token the
        model chose plus everything the grammar forces after it. `max_new_tokens` bounds
        the tokens the model chooses; forced ones cost no pass of their own.
        """
        import torch

        from fmrobot.llm.constrained import decode_greedy

        decoder = self._grammar().decoder(schema.model_json_schema())
        prompt = self._chat_ids(messages) + decoder.take_forced()
        read = self.stats["prompt_tokens"]
        # Kept whole: a replan or re-prompt of this question reads only what it adds, the
        # next question with the same system prompt only its own lines.
        cache, logits = self._prompt_state(prompt)
        length = len(prompt)
        self.stats["generate_passes"] += self.stats["prompt_tokens"] > read  # no pass when all of it was cached

        def run(tokens: list[int], rows: int):
            start = cache.get_seq_length()
            with torch.inference_mode():
                out = self.model(input_ids=torch.tensor([tokens], device=self.model.device),
                                 position_ids=torch.arange(start, start + len(tokens), device=self.model.device)[None],
                                 **{self._cache_kwarg: cache}, use_cache=True,
                                 **({"logits_to_keep": rows} if self._keeps_logits else {}))
            return out.logits[0, -rows:].float().cpu()

        try:
            decode_greedy(decoder, logits[0, -1], run, lambda: cache.crop(-1), self.config.max_new_tokens, self.stats)
        finally:
            cache.crop(-(cache.get_seq_length() - length))  # the kept prompt stays as it was
        return self.tokenizer.decode(decoder.tokens, skip_special_tokens=True)

    def _grammar(self):
        if self._grammars is None:
            from fmrobot.llm.constrained import grammars_for

            width = self.model.get_output_embeddings().weight.shape[0]  # the logits' width
            self._grammars = grammars_for(self.tokenizer, width)
        return self._grammars

    def _chat_ids(self, messages: Sequence[Message]) -> list[int]:
        chat = [{"role": m.role, "content": m.text} for m in messages]
        ids = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)
        ids = ids["input_ids"]
        return list(ids[0] if ids and isinstance(ids[0], list) else ids)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    # ------------------------------------------------------------------ prefix cache

    def _prompt_state(self, prompt_ids: list[int]):
        """Key-value cache and last-position logits for the prompt, resumed from the longest cached prefix."""
        import torch
        from transformers import DynamicCache

        key = tuple(prompt_ids)
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            self.stats["cached_tokens"] += len(key)
            return self._prefixes[key]
        best, best_len = None, 0
        for cached_key in self._prefixes:
            common = common_prefix(cached_key, key)
            if common > best_len:
                best, best_len = cached_key, common
        best_len = min(best_len, len(key) - 1)  # at least one token must run to get the last logits
        if best is not None and best_len > 0:
            cache = copy.deepcopy(self._prefixes[best][0])
            surplus = cache.get_seq_length() - best_len
            if surplus > 0:
                cache.crop(-surplus)  # this transformers API takes the number of tokens to drop, negated
        else:
            cache, best_len = DynamicCache(), 0
        rest = torch.tensor([prompt_ids[best_len:]], device=self.model.device)
        positions = torch.arange(best_len, len(prompt_ids), device=self.model.device)[None]
        with torch.inference_mode():
            extra = {"logits_to_keep": 1} if self._keeps_logits else {}
            out = self.model(input_ids=rest, position_ids=positions, use_cache=True, **{self._cache_kwarg: cache},
                             **extra)
        state = (cache, out.logits[:, -1:].float().cpu())  # the model filled `cache` in place
        self.stats["prompt_tokens"] += len(prompt_ids) - best_len
        self.stats["cached_tokens"] += best_len
        if self.config.prefix_cache_size:
            self._prefixes[key] = state
            while len(self._prefixes) > self.config.prefix_cache_size:
                self._prefixes.popitem(last=False)
        return state


class _TokenTree:
    """Token lists merged into a prefix tree, flattened in insertion order (a parent precedes its children)."""

    def __init__(self, pieces: Sequence[Sequence[int]]):
        self.tokens: list[int] = []
        self.depth: list[int] = []
        self.ancestors: list[list[int]] = []  # each node's ancestors and itself
        self.has_children: list[bool] = []
        self.paths: list[list[int]] = []  # node indices of each piece
        children: dict[tuple[int, int], int] = {}  # (parent node or -1, token) -> node
        for piece in pieces:
            parent, path = -1, []
            for token in piece:
                node = children.get((parent, token))
                if node is None:
                    node = len(self.tokens)
                    children[(parent, token)] = node
                    self.tokens.append(token)
                    self.depth.append(len(path))
                    self.ancestors.append((self.ancestors[parent] if parent >= 0 else []) + [node])
                    self.has_children.append(False)
                    if parent >= 0:
                        self.has_children[parent] = True
                path.append(node)
                parent = node
            self.paths.append(path)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two token sequences share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
