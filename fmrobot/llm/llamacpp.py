"""GGUF models run natively by llama.cpp (`llm=llamacpp`), through llama-cpp-python.

`pip install 'fmrobot[llamacpp]'` builds llama-cpp-python from source (about 9 minutes on
two cores; there is no wheel for these machines). `model` is a .gguf file, or `smollm2` /
`gemma3_270m` for the files fmrobot's weight packages ship (the Gemma file is assembled
into the cache on first use). llama.cpp maps the quantized file as it is, so a model
loads in under a second (SmolLM2 0.1-0.3 s, Gemma 0.4-0.8 s here) where transformers
dequantizes it or reads a converted float32 copy.

generate(messages, schema): with a schema, decoding runs under the schema's grammar with
xgrammar, as in the transformers backend (fmrobot/llm/constrained.py): the reply is valid
JSON of that shape by construction, the tokens the grammar forces run in one llama.cpp
batch with the next chosen token (one model pass per real choice, not one per token),
and the prompt stays in llama.cpp's cache, so the next prompt that shares its beginning
(a replan, the next question under the same system prompt) reads only the rest. The
grammar works on the GGUF's own vocabulary (each token's bytes as llama.cpp decodes
them). `max_new_tokens` bounds the tokens the model chooses. Messages go through the
GGUF's own chat template when it has one (SmolLM2); a base model without one (Gemma 3
270M) gets the plain-text transcript of `fmrobot.llm.gemma3.plain_prompt`, cut where it
starts the next turn when there is no schema. Decoding is greedy, without a repetition
penalty, as in the transformers backend.

score(prompt, continuations): the prompt runs once and stays in llama.cpp's key-value
cache (a later prompt that shares its beginning resumes from there); each continuation
then runs as one batch over it, asking llama.cpp for logits only at the positions that
are read, and is dropped from the cache again. Scores match the transformers backend's
to a few hundredths of a nat per token, but depend slightly on how the prompt was split
into batches (llama.cpp's kernels differ by batch size): the same calls give the same
numbers. Scoring is where transformers can be faster: its tree pass runs all
continuations in one forward over a cached prefix, and it reads a new prompt faster than
llama.cpp does here (SmolLM2). The field notes measured 0.47 s
(transformers) against 1.37 s (llama.cpp with `logits_all`, the vocabulary projection at
every position) for a 200-token prompt with SmolLM2. Asking for logits only where they
are read narrows that; one thread, busy machine, a new 200-token prompt and 4
continuations: SmolLM2 1.2 s here against 0.7 s (transformers), Gemma 0.97 s against
0.95 s; with the prompt cached both take 0.1-0.25 s. `scoring: transformers` therefore
hands score/score_many to the transformers backend for the same weights (the converted
SmolLM2 or Gemma folder, or transformers reading the GGUF itself) and keeps llama.cpp for
generation, where it is 5-7 times faster (SmolLM2 81 against 17 tokens/s, Gemma 49
against 7) and constrains the output: each engine where it is better. That costs loading
the model twice (a few seconds more, and its memory); for Gemma it gains nothing.

llama.cpp builds that use AMX crash on machines whose CPU reports AMX but cannot use it
(every eval segfaults in `ggml_backend_amx_mul_mat`). Build with the AMX options off
(`CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"`)
or set `extra_buffers: false`, which also turns off llama.cpp's faster repacked CPU weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError
from fmrobot.interfaces import Message
from fmrobot.llm.content import refuse_images
from fmrobot.llm.transformers_lm import common_prefix

INSTALL = ("pip install 'fmrobot[llamacpp]' (builds llama-cpp-python from source, about 9 minutes; add "
           "CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF\" where "
           "the CPU reports AMX it cannot use)")
PACKAGED = ("smollm2", "gemma3_270m")


class LlamaCppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "smollm2"  # a .gguf file, or smollm2 / gemma3_270m: the file fmrobot's weight package ships
    n_ctx: int = Field(default=2048, ge=64)  # tokens of context (prompt plus reply or continuation)
    threads: int = Field(default=1, ge=1)
    max_new_tokens: int = Field(default=256, ge=1)
    # auto: the GGUF's chat template if it has one, else a plain-text transcript (base models)
    prompt_format: Literal["auto", "chat", "plain"] = "auto"
    scoring: Literal["llamacpp", "transformers"] = "llamacpp"  # transformers: faster scoring, model loaded twice
    # generate() with a schema follows its grammar (xgrammar); false: free text, which callers
    # validate and re-prompt (as TransformersLMConfig.constrained)
    constrained: bool = True
    extra_buffers: bool = True  # false: no repacked weights; works around a build that crashes in AMX code
    cache_dir: str | None = None  # where the Gemma GGUF is assembled; $FMROBOT_CACHE or ~/.cache/fmrobot


def model_path(model: str, cache_dir: str | None = None) -> Path:
    """The GGUF file that `model` names: a packaged model's name or a path."""
    if model == "smollm2":
        from fmrobot.llm.smollm2 import GGUF_FILE, gguf_folder

        return gguf_folder() / GGUF_FILE
    if model == "gemma3_270m":
        from fmrobot.llm.gemma3 import gguf_path

        return gguf_path(cache_dir)
    path = Path(model).expanduser()
    if not path.is_file() or path.suffix != ".gguf":
        what = "is not a .gguf file" if path.is_file() else "does not exist"
        raise ConfigError(f"llm=llamacpp: model must be a .gguf file or one of {', '.join(PACKAGED)}; "
                          f"{str(path)!r} {what}")
    return path


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as error:
        raise ConfigError(f"llm=llamacpp needs llama-cpp-python ({error}): {INSTALL}") from None
    return llama_cpp


class LlamaCppLM:
    """`LanguageModel` over llama.cpp; see the module docstring."""

    Config = LlamaCppConfig
    reads_images = False  # text only: generate() refuses messages with images (ImagesNotSupportedError)

    @property
    def grammar_constrained(self) -> bool:
        """generate() with a schema decodes under its grammar, so planners may ask for their terser
        JSON form (llm_structured's compact plans: half the tokens, fewer model passes)."""
        return self.config.constrained

    def __init__(self, config: LlamaCppConfig | None = None):
        config = config or LlamaCppConfig()
        self.config = config
        llama_cpp = _llama_cpp()
        self.path = model_path(config.model, config.cache_dir)
        self._llm = _load(llama_cpp, self.path, config)
        self._n_vocab = self._llm.n_vocab()
        has_template = "tokenizer.chat_template" in self._llm.metadata
        if config.prompt_format == "chat" and not has_template:
            raise ConfigError(f"llm=llamacpp: prompt_format is chat, but {self.path.name} has no chat template; "
                              "use prompt_format: plain (or auto)")
        self._chat = has_template and config.prompt_format != "plain"
        self._formatter = None  # the GGUF's chat template, made on first use
        self._grammars = None  # made on the first generate() with a schema (reading the vocabulary takes 0.4-1.2 s)
        self._last: tuple[list[int], object] | None = None  # the last scored prompt and its next-token log-probs
        self.stats = {"prompt_tokens": 0, "cached_tokens": 0, "continuation_tokens": 0, "generated_tokens": 0,
                      "forced_tokens": 0, "generate_passes": 0}
        self._scorer = _transformers_scorer(config) if config.scoring == "transformers" else None

    # ------------------------------------------------------------------ LanguageModel

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str:
        """Greedy reply; with `schema` (and `constrained`), decoded under the schema's JSON grammar, else free text."""
        from fmrobot.llm.gemma3 import STOPS, cut_reply, plain_prompt

        refuse_images("llm=llamacpp", messages)
        if schema is not None and self.config.constrained:
            return self._generate_constrained(messages, schema)
        options = {"max_tokens": self.config.max_new_tokens, "temperature": 0.0, "repeat_penalty": 1.0}
        if self._chat:
            out = self._llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.text} for m in messages], **options)
            text = out["choices"][0]["message"]["content"] or ""
        else:  # a base model writes on into the next turn: cut there
            out = self._llm.create_completion(plain_prompt(messages), stop=list(STOPS), **options)
            text = cut_reply(out["choices"][0]["text"])
        self.stats["generated_tokens"] += int((out.get("usage") or {}).get("completion_tokens") or 0)
        return text

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """Summed log-probability of each continuation's tokens after the prompt.

        Prompt and continuation are tokenized apart (the prompt with the model's BOS token
        if its GGUF asks for one), as the transformers backend does, so a continuation
        brings its own leading space.
        """
        return self.score_many([(prompt, continuations)])[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        if self._scorer is not None:
            return self._scorer.score_many(requests)
        return [self._score(prompt, list(continuations)) if continuations else [] for prompt, continuations in requests]

    def count_tokens(self, text: str) -> int:
        return len(self._tokens(text, bos=False))

    def close(self) -> None:
        self._llm.close()

    # ------------------------------------------------------------------ scoring

    def _tokens(self, text: str, bos: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False) if text else []

    def _score(self, prompt: str, continuations: list[str]) -> list[float]:
        import numpy as np

        if not prompt:
            raise ValueError("score() needs a non-empty prompt")
        ids = self._tokens(prompt, bos=True)
        pieces = [self._tokens(c, bos=False) for c in continuations]
        if any(not piece for piece in pieces):
            raise ValueError("every continuation must have at least one token")
        longest = len(ids) + max(len(p) for p in pieces)
        if longest > self.config.n_ctx:
            raise ValueError(f"prompt and continuation take {longest} tokens; the context holds "
                             f"{self.config.n_ctx} (llm.n_ctx)")
        first = self._prompt_logp(ids)
        llm, start, scores = self._llm, len(ids), []
        for piece in pieces:
            total = float(first[piece[0]])
            # Each token but the last predicts the next one; only those positions need logits.
            body = piece[:-1]
            try:
                for at in range(0, len(body), llm.n_batch):
                    chunk = body[at:at + llm.n_batch]
                    llm._batch.set_batch(batch=chunk, n_past=start + at, logits_all=True)
                    llm._ctx.decode(llm._batch)
                    rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), self._n_vocab))
                    nexts = piece[at + 1:at + 1 + len(chunk)]
                    total += float(sum(_log_softmax(row)[token] for row, token in zip(rows, nexts)))
            finally:
                llm._ctx.kv_cache_seq_rm(0, start, -1)  # the cache holds the prompt only, as llm.n_tokens says
            scores.append(total)
        self.stats["continuation_tokens"] += sum(len(p) for p in pieces)
        return scores

    def _prompt_logp(self, ids: list[int]):
        """Next-token log-probs after the prompt, which is left in the cache (resumed from what is there)."""
        held = self._llm.input_ids[:self._llm.n_tokens].tolist()  # what the cache holds, after scoring or generating
        if self._last is not None and self._last[0] == ids and held == ids:
            self.stats["cached_tokens"] += len(ids)
            return self._last[1]
        logp = _log_softmax(self._prompt_logits(ids))
        self._last = (list(ids), logp)
        return logp

    # ------------------------------------------------------------------ generation

    def _generate_constrained(self, messages: Sequence[Message], schema: type[BaseModel]) -> str:
        """Greedy decoding under the schema's grammar, one llama.cpp batch per real choice (`decode_greedy`)."""
        import numpy as np
        import torch

        from fmrobot.llm.constrained import decode_greedy

        decoder = self._vocabulary_grammars().decoder(schema.model_json_schema())
        prompt = self._prompt_ids(messages) + decoder.take_forced()
        read = self.stats["prompt_tokens"]
        logits = torch.from_numpy(self._prompt_logits(prompt))
        self.stats["generate_passes"] += self.stats["prompt_tokens"] > read
        llm, n_ctx = self._llm, self.config.n_ctx

        def run(tokens: list[int], rows: int):
            held = llm.n_tokens
            if held + len(tokens) > n_ctx:
                raise ValueError(f"the prompt and the answer so far take more than the {n_ctx} tokens the context "
                                 "holds (llm.n_ctx)")
            llm._batch.set_batch(batch=tokens, n_past=held, logits_all=False)
            for i in range(len(tokens) - rows, len(tokens)):
                llm._batch.batch.logits[i] = True  # logits only where the decoder reads them
            llm._ctx.decode(llm._batch)
            llm.input_ids[held:held + len(tokens)] = tokens
            llm.n_tokens += len(tokens)
            return [torch.from_numpy(np.ctypeslib.as_array(llm._ctx.get_logits_ith(len(tokens) - rows + k),
                                                           shape=(self._n_vocab,)).copy()) for k in range(rows)]

        def drop_last():
            llm.n_tokens -= 1
            llm._ctx.kv_cache_seq_rm(0, llm.n_tokens, -1)

        try:
            decode_greedy(decoder, logits, run, drop_last, self.config.max_new_tokens, self.stats)
        finally:  # the cache keeps the prompt, for the next one that shares its beginning
            llm.n_tokens = len(prompt)
            llm._ctx.kv_cache_seq_rm(0, len(prompt), -1)
        return llm.detokenize(decoder.tokens).decode("utf-8", errors="replace")

    def _prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The prompt's tokens: the GGUF's chat template with the generation prompt, or the plain transcript."""
        from fmrobot.llm.gemma3 import plain_prompt

        if not self._chat:
            return self._llm.tokenize(plain_prompt(messages).encode("utf-8"), add_bos=True, special=False)
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self._llm._model

            def text(token: int) -> str:  # -1: the GGUF has no such token
                return model.token_get_text(token) if token != -1 else ""

            self._formatter = Jinja2ChatFormatter(template=self._llm.metadata["tokenizer.chat_template"],
                                                  eos_token=text(model.token_eos()), bos_token=text(model.token_bos()))
        result = self._formatter(messages=[{"role": m.role, "content": m.text} for m in messages])
        return self._llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def _prompt_logits(self, ids: list[int]):
        """Next-token logits after the prompt, which is left in the cache (resumed from what is there)."""
        import numpy as np

        if len(ids) >= self.config.n_ctx:
            raise ValueError(f"the prompt takes {len(ids)} tokens; the context holds {self.config.n_ctx} (llm.n_ctx)")
        llm = self._llm
        common = min(common_prefix(llm.input_ids[:llm.n_tokens].tolist(), ids), len(ids) - 1)
        llm.n_tokens = common  # eval drops the cache past this point first
        llm.eval(ids[common:])
        self.stats["prompt_tokens"] += len(ids) - common
        self.stats["cached_tokens"] += common
        return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(self._n_vocab,)).copy()

    def _vocabulary_grammars(self):
        """xgrammar over the GGUF's vocabulary: each token's bytes as llama.cpp decodes them, its end-of-turn tokens."""
        if self._grammars is None:
            import ctypes

            import llama_cpp

            from fmrobot.llm.constrained import Grammars

            vocab = llama_cpp.llama_model_get_vocab(self._llm._model.model)
            buffer = ctypes.create_string_buffer(256)

            def piece(token: int) -> bytes:  # b"" for control tokens (special=False)
                size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
                return buffer.raw[:size] if size > 0 else b""

            stops = [t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]
            self._grammars = Grammars.of_pieces([piece(t) for t in range(self._n_vocab)], stops)
        return self._grammars


def _load(llama_cpp, path: Path, config: LlamaCppConfig):
    """The llama_cpp.Llama for the file, or one ConfigError."""
    settings = dict(n_ctx=config.n_ctx, n_threads=config.threads, n_threads_batch=config.threads, logits_all=False,
                    swa_full=True,  # a full cache for sliding-window layers: scoring cuts it back at any position
                    verbose=False)
    lib = llama_cpp.llama_cpp
    default_params = lib.llama_model_default_params
    if not config.extra_buffers:
        # Llama() offers no option for it, so its default model parameters are patched for this one call.
        def params():
            p = default_params()
            p.use_extra_bufts = False
            return p

        lib.llama_model_default_params = params
    try:
        return llama_cpp.Llama(model_path=str(path), **settings)
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"llama.cpp could not load {str(path)!r}: {type(error).__name__}: {first}") from None
    finally:
        lib.llama_model_default_params = default_params


def _transformers_scorer(config: LlamaCppConfig):
    """The transformers backend for the same weights, for `scoring: transformers`."""
    if config.model == "smollm2":
        from fmrobot.llm.smollm2 import SmolLM2, SmolLM2Config

        return SmolLM2(SmolLM2Config(threads=config.threads))
    if config.model == "gemma3_270m":
        from fmrobot.llm.gemma3 import Gemma3, Gemma3Config

        return Gemma3(Gemma3Config(threads=config.threads, cache_dir=config.cache_dir))
    from fmrobot.llm.transformers_lm import TransformersLM, TransformersLMConfig

    path = model_path(config.model)
    # transformers dequantizes the GGUF on every load: slow for a big file, but any architecture it knows works.
    return TransformersLM(TransformersLMConfig(model=str(path.parent), gguf_file=path.name, threads=config.threads))


def _log_softmax(row):
    import numpy as np

    row = np.asarray(row, dtype=np.float64)
    top = row.max()
    return row - (top + np.log(np.exp(row - top).sum()))
