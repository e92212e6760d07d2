"""Causal language models through transformers: hub id, local folder, or GGUF file.

Scoring is the planner's hot path, so it does not re-read what it has seen: the
key-value caches of a few prompt prefixes are kept (least recently used first out), a
scoring call resumes from the longest cached prefix (the few-shot examples that do not
change between decisions), and the rest of each prompt and all its continuations run in
one forward pass over that cache as a token tree, instead of one full forward per
candidate.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message

_MIN_VOCABULARY = 100  # offline, a tokenizer without its files can load with a handful of tokens


class TransformersLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str  # Hugging Face hub id or local folder
    gguf_file: str | None = None  # a .gguf file inside `model` (transformers dequantizes it)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    threads: int | None = Field(default=1, ge=1)  # torch.set_num_threads (process-wide) when set
    max_new_tokens: int = Field(default=256, ge=1)
    prefix_cache_size: int = Field(default=4, ge=0)  # prompts whose key-value cache is kept
    device: str = "cpu"


def load_causal_lm(model: str, gguf_file: str | None = None, dtype: str = "float32", device: str = "cpu"):
    """Tokenizer and model, or one ConfigError that says what failed and what to do."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    what = f"{model!r}" + (f" (gguf_file={gguf_file!r})" if gguf_file else "")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
        lm = AutoModelForCausalLM.from_pretrained(model, gguf_file=gguf_file, dtype=getattr(torch, dtype))
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"could not load language model {what}: {type(error).__name__}: {first}. Without a model hub, give a "
            "local folder written by save_pretrained, or a folder holding the .gguf file and its name in gguf_file"
        ) from error
    if len(tokenizer) < _MIN_VOCABULARY:
        raise ConfigError(f"the tokenizer of {what} loaded with {len(tokenizer)} tokens: its files are missing")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, lm.to(device).eval()


class TransformersLM:
    """`LanguageModel` over a transformers causal LM."""

    Config = TransformersLMConfig

    def __init__(self, config: TransformersLMConfig, tokenizer=None, model=None):
        import torch

        self.config = config
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        if model is None:
            tokenizer, model = load_causal_lm(config.model, config.gguf_file, config.dtype, config.device)
        self.tokenizer, self.model = tokenizer, model
        self._prefixes: OrderedDict[tuple[int, ...], tuple[object, object]] = OrderedDict()
        self.stats = {"prompt_tokens": 0, "cached_tokens": 0, "continuation_tokens": 0, "tree_tokens": 0,
                      "generated_tokens": 0}
        # Most causal LMs can skip the vocabulary projection for positions nobody reads.
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

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
            shared = shared[:_common_prefix(shared, ids)]
        if not shared:  # nothing in common to attend to: one pass per prompt
            return [self.score_many([request])[0] for request in requests]
        # Start from what the cache already holds of it (a new prompt's few-shot part), so
        # the rest of each prompt runs inside the same pass as the continuations.
        cached = max((_common_prefix(key, shared) for key in self._prefixes), default=0)
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
                                     past_key_values=cache, use_cache=True, **extra)
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
        """Greedy chat completion. `schema` is not enforced here (no constrained decoding in this
        backend): callers validate the text and re-prompt, as the structured planner does."""
        import torch

        chat = [{"role": m.role, "content": m.content} for m in messages]
        ids = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        with torch.inference_mode():
            out = self.model.generate(**{k: v.to(self.model.device) for k, v in ids.items()},
                                      max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[0, ids["input_ids"].shape[1]:]
        self.stats["generated_tokens"] += int(new.numel())
        return self.tokenizer.decode(new, skip_special_tokens=True)

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
            common = _common_prefix(cached_key, key)
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
            out = self.model(input_ids=rest, past_key_values=cache, position_ids=positions, use_cache=True, **extra)
        state = (out.past_key_values, out.logits[:, -1:].float().cpu())
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


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
