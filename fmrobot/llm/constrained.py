"""Grammar-constrained decoding: a JSON schema becomes a token-level grammar (xgrammar).

Every token the model may choose is masked to those the grammar allows, so the output
parses and validates against the schema by construction. Most of a JSON plan is not the
model's choice at all (`{"steps":[{"skill":"`, `","args":{"object":"`, the rest of
a label once its first word picks it), so the decoder hands those forced tokens back in
a batch and the model runs one forward pass over them and the next chosen token, instead
of one pass per token (jump-forward decoding). The model only runs where the grammar
leaves a real choice.

Forced text is split into tokens greedily (xgrammar's jump-forward tokens, which stop
short of a token that a longer one could extend), but a BPE model may spell the end of
it otherwise where a choice follows (`"}}]}` is `"`, `}}`, `]}` to SmolLM2, and a forced
`"}` would leave it only the `},` that continues the plan). So the last forced token of
a run is put to the model, from the same pass's logits one position earlier; when it
prefers another allowed token there, that one replaces it (`recheck`).

This module holds the grammar side and the decoding loop (`decode_greedy`); each engine
(`TransformersLM`, `LlamaCppLM`) only runs its model over the tokens the loop hands it.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Callable, Sequence

import numpy as np

# Reading a vocabulary into xgrammar takes a few tenths of a second: models that share a
# tokenizer object share its Grammars (and the compiler's cache of compiled schemas).
_SHARED: weakref.WeakKeyDictionary[Any, dict[int, Grammars]] = weakref.WeakKeyDictionary()


def grammars_for(tokenizer, vocab_size: int) -> Grammars:
    """The Grammars of this (transformers) tokenizer for logits `vocab_size` wide, made once."""
    try:
        per_width = _SHARED.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: not shared
        return Grammars.of_tokenizer(tokenizer, vocab_size)
    if vocab_size not in per_width:
        per_width[vocab_size] = Grammars.of_tokenizer(tokenizer, vocab_size)
    return per_width[vocab_size]


class Grammars:
    """xgrammar's view of one vocabulary: compiles JSON schemas into grammars over its tokens."""

    @classmethod
    def of_tokenizer(cls, tokenizer, vocab_size: int) -> Grammars:
        """For a transformers tokenizer. The model's logits may be wider than the tokenizer (padded
        embeddings): the mask must match the logits."""
        import xgrammar

        return cls(xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size))

    @classmethod
    def of_pieces(cls, pieces: list[bytes], stop_ids: list[int]) -> Grammars:
        """For a vocabulary given as each token's bytes (b"" for control tokens), as llama.cpp reads it from a GGUF."""
        import xgrammar

        return cls(xgrammar.TokenizerInfo(pieces, xgrammar.VocabType.RAW, vocab_size=len(pieces),
                                          stop_token_ids=list(stop_ids)))

    def __init__(self, info):
        import xgrammar

        self.info = info
        # One thread, as everything here; compiled schemas are cached (each scene's labels make a new
        # one), within a bound so a long benchmark does not grow without end.
        self.compiler = xgrammar.GrammarCompiler(self.info, max_threads=1, cache_limit_bytes=64 << 20)
        self.vocab = [bytes(piece) for piece in self.info.decoded_vocab]  # token id -> the bytes it decodes to
        self.stop = frozenset(self.info.stop_token_ids)

    def decoder(self, schema: dict[str, Any]) -> GrammarDecoder:
        # Keys keep their schema order (skill before args, as in the prompt's example), and no
        # optional whitespace, as the planners' examples are written: the model writes the form
        # it was shown, whitespace is never a choice it can wander into, and no token is spent on it.
        try:
            compiled = self.compiler.compile_json_schema(json.dumps(_json_strings(_any_of(schema))),
                                                         any_whitespace=False,
                                                         separators=(",", ":"), strict_mode=True)
        except Exception as error:  # xgrammar's own errors name no schema
            first = (str(error).strip().splitlines() or [""])[0][:200]
            raise ValueError(f"expected a JSON schema xgrammar can compile, got {schema.get('title', 'a schema')} "
                             f"that fails with {type(error).__name__}: {first}; set constrained: false "
                             "to generate free text instead") from error
        return GrammarDecoder(self, compiled)


def _any_of(node: Any) -> Any:
    """The schema with each `oneOf` as `anyOf`. A grammar cannot express "exactly one branch"; xgrammar
    falls back to anyOf itself, with a warning printed from C++ on every compile. Exclusivity is still
    checked: every decoded plan is validated against the schema's models."""
    if isinstance(node, dict):
        return {("anyOf" if key == "oneOf" else key): _any_of(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_any_of(item) for item in node]
    return node


def _json_strings(node: Any) -> Any:
    """The schema with each length-bounded plain string as the same bound on a pattern of JSON string characters.
    xgrammar (0.2.9) lets a string with minLength or maxLength hold raw control characters, which no JSON
    parser accepts (a random model writes them); its pattern strings and unbounded strings exclude them.
    The pattern leaves out escapes too: a bounded string here is plain text."""
    if isinstance(node, list):
        return [_json_strings(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_strings(value) for key, value in node.items()}
    bounded = "minLength" in node or "maxLength" in node
    if node.get("type") == "string" and bounded and not {"pattern", "format", "enum", "const"} & node.keys():
        low, high = node.pop("minLength", 0), node.pop("maxLength", "")
        node["pattern"] = rf'^[^"\\\x00-\x1f]{{{low},{high}}}$'  # no quote, backslash or control character
    return node


class GrammarDecoder:
    """The grammar state of one answer: which tokens come next, forced or chosen."""

    def __init__(self, grammars: Grammars, compiled):
        import xgrammar

        self.grammars = grammars
        self.matcher = xgrammar.GrammarMatcher(compiled)
        self.bitmask = xgrammar.allocate_token_bitmask(1, grammars.info.vocab_size)
        self.tokens: list[int] = []  # every accepted token, in order
        self.forced = 0  # of those, how many the grammar left no choice about
        self.finished = False  # the answer is complete (only a stop token may follow)
        # The last forced token and the mask of its position when other tokens could spell the
        # same text there: see `recheck`.
        self._last: tuple[int, Any] | None = None

    def take_forced(self) -> list[int]:
        """Accept the tokens the grammar forces from here up to the next real choice; return them."""
        out: list[int] = []
        self._last = None
        while not self.finished:
            jump = self.matcher.find_jump_forward_tokens()
            for k, token in enumerate(jump):
                if k == len(jump) - 1:
                    self._remember(token)
                self._accept(token)
                out.append(token)
            allowed = self._allowed()
            open_tokens = [t for t in allowed if t not in self.grammars.stop]
            if not open_tokens:  # complete: nothing but a stop token can follow
                self.finished = True
                break
            if len(open_tokens) < len(allowed):  # the answer may end here or go on: the model decides
                break
            # find_jump_forward_tokens leaves out a last token that a longer token could extend
            # (` "` before ` "red`); when no allowed token reaches past the forced text, there is
            # no such longer token here, and the longest allowed piece is as forced as the rest.
            text = self.matcher.find_jump_forward_string().encode()
            vocab = self.grammars.vocab
            inside = [t for t in allowed if text and text.startswith(vocab[t])]
            if len(allowed) == 1 or len(inside) == len(allowed):
                token = max(allowed, key=lambda t: len(vocab[t]))
                self._last = (token, self.bitmask.clone()) if len(allowed) > 1 else None
                self._accept(token)
                out.append(token)
                continue
            break
        self.forced += len(out)
        return out

    @property
    def rechecks(self) -> bool:
        """Whether the last forced run ended in a token that `recheck` should put to the model."""
        return self._last is not None

    def recheck(self, logits) -> int | None:
        """Put the last forced token to the model, given the logits of the position before it.

        Forced text is split greedily into the longest tokens, but a BPE model often spells
        the same text otherwise where a choice follows: `"}}]}` is `"`, `}}`, `]}` to it, and
        a forced `"}` leaves it only the continuing `},` it knows (a plan that never ends).
        When the model prefers another allowed token at that position, the forced one is
        taken back and the model's is accepted instead (returned); None when it agrees.
        """
        import xgrammar

        if self._last is None:
            return None
        token, mask = self._last
        self._last = None
        row = logits.reshape(1, -1).float().clone()
        xgrammar.apply_token_bitmask_inplace(row, mask.to(row.device))
        best = int(row.argmax())
        if best == token:
            return None
        self.matcher.rollback(1)
        self.tokens.pop()
        self.forced -= 1
        self._accept(best)
        return best

    def choose(self, logits) -> int | None:
        """The likeliest token the grammar allows (greedy), accepted; None when that is a stop token."""
        import xgrammar

        row = logits.reshape(1, -1).float().clone()
        self.matcher.fill_next_token_bitmask(self.bitmask)
        xgrammar.apply_token_bitmask_inplace(row, self.bitmask.to(row.device))
        token = int(row.argmax())
        if token in self.grammars.stop:
            self.finished = True
            return None
        self._accept(token)
        return token

    def _remember(self, token: int) -> None:
        """Keep the mask of the position `token` is about to fill, if it leaves other choices."""
        self.matcher.fill_next_token_bitmask(self.bitmask)
        self._last = (token, self.bitmask.clone()) if len(self._allowed_from_mask()) > 1 else None

    def _accept(self, token: int) -> None:
        if not self.matcher.accept_token(token):
            raise RuntimeError(f"the grammar refused token {token} that its own mask allowed")
        self.tokens.append(token)

    def _allowed(self) -> list[int]:
        self.matcher.fill_next_token_bitmask(self.bitmask)
        return self._allowed_from_mask()

    def _allowed_from_mask(self) -> list[int]:
        bits = np.unpackbits(self.bitmask.numpy().view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[:self.grammars.info.vocab_size]).tolist()


def decode_greedy(decoder: GrammarDecoder, logits, run: Callable[[list[int], int], Sequence[Any]],
                  drop_last: Callable[[], None], max_chosen: int, stats: dict[str, int]) -> None:
    """Greedy decoding under the decoder's grammar, one model pass per real choice.

    `logits` are the next-token logits after the prompt (which ends with the answer's forced
    opening). `run(tokens, rows)` puts the tokens after what the model holds and returns the
    logits of the last `rows` of them (rows is 1, or 2 when the last forced token is to be
    rechecked); `drop_last()` takes the last of them back out. `max_chosen` bounds the tokens
    the model chooses; forced ones are free. The decoder ends up holding the answer's tokens;
    the engine's `stats` count its passes, tokens and forced tokens.
    """
    chosen, pending, passes = 0, None, 0
    while True:
        if pending is not None:  # the chosen token and what the grammar forces after it, one pass
            check = decoder.rechecks and len(pending) > 1
            rows = run(pending, 2 if check else 1)
            passes += 1
            if check and decoder.recheck(rows[0]) is not None:
                # The model spells the end of the forced text otherwise: its token replaces
                # the last forced one, and decoding goes on from there.
                drop_last()
                pending = [decoder.tokens[-1]] + decoder.take_forced()
                if decoder.finished:
                    break
                continue
            logits = rows[-1]
        if decoder.finished or chosen >= max_chosen:
            break
        token = decoder.choose(logits)
        if token is None:
            break
        chosen += 1
        pending = [token] + decoder.take_forced()
        if decoder.finished:  # only a stop token can follow: no need to ask the model
            break
    stats["generate_passes"] += passes
    stats["generated_tokens"] += len(decoder.tokens)
    stats["forced_tokens"] += decoder.forced


class GrammarLogitsProcessor:
    """The schema's grammar as a transformers logits processor, for models that run through `generate()`.

    Vision-language models compute their own positions and image features inside `generate()`
    (Qwen2-VL's M-RoPE, Idefics3's image splicing), so `TransformersLM`'s hand-driven loop with
    jump-forward passes does not fit them; here every token, forced or not, costs one step. Each
    call accepts the token chosen last and masks the next step's scores to what the grammar
    allows. One sequence at a time (batch size 1).
    """

    def __init__(self, grammars: Grammars, schema: dict[str, Any], prompt_length: int):
        self.decoder = grammars.decoder(schema)
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        import xgrammar

        matcher = self.decoder.matcher
        if input_ids.shape[1] > self.prompt_length:
            token = int(input_ids[0, -1])
            if not matcher.accept_token(token):
                raise RuntimeError(f"the grammar refused token {token} that its own mask allowed")
            self.decoder.tokens.append(token)
        matcher.fill_next_token_bitmask(self.decoder.bitmask)
        xgrammar.apply_token_bitmask_inplace(scores, self.decoder.bitmask.to(scores.device))
        return scores
