"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, `transformers serve`).

The base URL and model come from the config; the API key only from the environment
variable the config names, and it never appears in a message, log or result.
Requests have a timeout and a bounded number of retries (connection errors, 429, 5xx).

Scoring needs token log-probabilities of a given text. Where the server returns them
for an echoed prompt (`/v1/completions` with `echo` and `logprobs`, as vLLM does), a
continuation scores the sum of its tokens' log-probabilities. Where it does not (for
example `transformers serve` ignores `logprobs` and `echo`, and answers 400 to a list
of prompts), the documented fallback is choice: the model is shown the numbered
continuations and asked for the best number, in at most 16 tokens (an answer that
quotes exactly one option's text instead picks that option); the chosen one scores 0
and the others -1000. That ranks but is not a likelihood, so calibration and conformal
sets degrade to a single choice. `auto` falls back to choice when the echoed request
gets no log-probabilities or is refused (HTTP 400, 404, 405, 422 or 501); a server that
cannot be reached is an error, not a fallback.

With a schema, generate() sends `response_format` (config `response_format`): OpenAI and
vLLM take `json_schema`, llama.cpp's server takes `json_object` with a `schema` (and
answers 422 to `json_schema`), and `none` sends nothing.
Messages with images send them as `image_url` parts holding PNG data URLs (the form vLLM,
llama.cpp's server with a multimodal projector, and `transformers serve` with a vision model
read); text-only messages keep a plain string `content`. With `images: false` such messages
are refused here instead (ImagesNotSupportedError). A server whose model reads no images may
answer with an HTTP error (one line to the user) or, as `transformers serve` does, drop the
image parts and answer from the text alone.
`transformers serve` ignores `response_format`, so structured planning against it
relies on the planner's validation and re-prompting, not on constrained decoding. It
loads the model a request names (a hub id or a local folder); started with a model
argument (`transformers serve /path/to/folder`) it serves only that one, and `model`
here must name it exactly.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fmrobot import security
from fmrobot.errors import ConfigError, LanguageModelError
from fmrobot.interfaces import Message
from fmrobot.llm import retry
from fmrobot.llm.content import openai_parts, refuse_images
from fmrobot.llm.retry import RetryPolicy, TransientLanguageModelError

log = logging.getLogger(__name__)
NOT_CHOSEN = -1000.0
CHOICE_TOKENS = 16  # the choice answer is a number; a longer one tends to mention every option
#: HTTP statuses meaning "this server does not do echoed log-probabilities", not a failure
NO_LOGPROBS_STATUSES = (400, 404, 405, 422, 501)


class OpenAICompatibleConfig(RetryPolicy):
    """The server and model; the retry fields (retries ≤ 10, backoff, max_backoff ≤ 30 s,
    deadline_seconds per decision) come from RetryPolicy (fmrobot/llm/retry.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "http://127.0.0.1:8000/v1"  # http:// or https:// only, without credentials
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"  # the name of the variable, never the key
    timeout: float = Field(default=30.0, gt=0.0)  # seconds per request
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    scoring: Literal["auto", "logprobs", "choice"] = "auto"  # auto: logprobs if the server gives them
    # How generate() asks the server to constrain output to a schema it is given:
    # json_schema: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}} (OpenAI, vLLM);
    # json_object: {"type": "json_object", "schema": ...} (llama.cpp's server, which answers 422 to json_schema);
    # none: no response_format (the planner validates and re-prompts).
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    # Messages with images go to the server as image_url parts (PNG data URLs). A server that refuses
    # them answers with an HTTP error, which reaches the user as one line; `transformers serve` with a
    # text-only model drops them without a word. False: refuse them here (a text-only server).
    images: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        return checked_base_url(url)


def checked_base_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host and no credentials.

    urllib would open file:// and ftp:// URLs too, and read a local file as the model's reply.
    A URL with credentials is refused with a ConfigError, not a ValueError: validation errors
    quote the value they refuse, and this one must not be quoted anywhere.
    """
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigError("llm.base_url must not carry credentials (user:password@host): the URL is kept in "
                          "results and logs; put the key in an environment variable and name it in llm.api_key_env")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be an http:// or https:// URL with a host, such as http://127.0.0.1:8000/v1")
    return url


class OpenAICompatibleLM:
    Config = OpenAICompatibleConfig

    def __init__(self, config: OpenAICompatibleConfig):
        self.config = config
        self.reads_images = config.images
        self.retry_policy = RetryPolicy.of(config)
        self.scoring = config.scoring
        self.stats = {"requests": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._one_prompt_per_request = False  # set when the server refuses a list of prompts
        self._refused_with: int | None = None  # the HTTP status of the last refused request

    # ------------------------------------------------------------------ LanguageModel

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        if not continuations:
            return []
        if self.scoring in ("auto", "logprobs"):
            scores = self._score_logprobs(prompt, continuations)
            if scores is not None:
                self.scoring = "logprobs"
                return scores
            if self.scoring == "logprobs":
                raise LanguageModelError(
                    f"{self.config.base_url} returned no token log-probabilities for an echoed prompt; "
                    "set scoring: choice (or auto) for servers without them")
            log.warning("%s gives no prompt log-probabilities; scoring by choice from now on", self.config.base_url)
            self.scoring = "choice"
        return self._score_by_choice(prompt, continuations)

    def generate(self, messages: Sequence[Message], schema: type[BaseModel] | None = None) -> str:
        if not self.reads_images:
            refuse_images("llm=openai with images: false", messages)
        return self._chat(messages, schema, self.config.max_tokens)

    def _chat(self, messages: Sequence[Message], schema: type[BaseModel] | None, max_tokens: int) -> str:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": m.role, "content": openai_parts(m)} for m in messages],
            "max_tokens": max_tokens,
            "temperature": self.config.temperature,
        }
        if schema is not None and self.config.response_format != "none":
            body["response_format"] = response_format(schema, self.config.response_format)
        reply = self._post("/chat/completions", body)
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as error:
            raise LanguageModelError(f"{self.config.base_url}: malformed chat reply ({error!r})") from None

    # ------------------------------------------------------------------ scoring

    def _score_logprobs(self, prompt: str, continuations: Sequence[str]) -> list[float] | None:
        """Echoed prompt log-probabilities of each continuation; None when the server gives none.
        All continuations go in one request as a list of prompts; a server that takes one prompt per
        request (llama.cpp's answers a list with HTTP 500) gets one request each from then on."""
        texts = [prompt + c for c in continuations]
        if len(texts) > 1 and not self._one_prompt_per_request:
            reply = self._post("/completions", self._echo_body(texts), refused=NO_LOGPROBS_STATUSES + (500,))
            if reply is not None:
                return self._echoed_scores(reply, prompt, texts)
            if self._refused_with != 500:
                return None  # no log-probabilities at all (a 4xx), not a refusal of the list
            self._one_prompt_per_request = True
        scores: list[float] = []
        for text in texts:
            reply = self._post("/completions", self._echo_body(text), refused=NO_LOGPROBS_STATUSES)
            found = None if reply is None else self._echoed_scores(reply, prompt, [text])
            if found is None:
                return None
            scores += found
        return scores

    def _echo_body(self, prompt: str | list[str]) -> dict[str, Any]:
        return {"model": self.config.model, "prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 0,
                "temperature": 0.0}

    @staticmethod
    def _echoed_scores(reply: dict[str, Any], prompt: str, texts: Sequence[str]) -> list[float] | None:
        choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(texts):
            return None
        scores = []
        for choice, text in zip(choices, texts):
            logprobs = choice.get("logprobs") or {}
            tokens, values, offsets = (logprobs.get(k) for k in ("tokens", "token_logprobs", "text_offset"))
            if not tokens or not values or not offsets or len(values) != len(offsets):
                return None
            # Tokens that start within the continuation belong to it (the generated token starts after it).
            total = sum(v for v, o in zip(values, offsets) if len(prompt) <= o < len(text) and v is not None)
            scores.append(float(total))
        return scores

    def _score_by_choice(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        options = "\n".join(f"{i}. {c.strip()}" for i, c in enumerate(continuations, start=1))
        messages = [
            Message(role="system", content="Answer with the number of the best option only."),
            Message(role="user", content=f"{prompt}\n\nWhich continuation is best?\n{options}\nNumber:"),
        ]
        answer = self._chat(messages, None, min(self.config.max_tokens, CHOICE_TOKENS))
        choice = _chosen_option(answer, continuations)
        if choice is None:
            raise LanguageModelError(f"the model answered {answer[:80]!r}, not an option number 1..{len(continuations)}")
        return [0.0 if i == choice else NOT_CHOSEN for i in range(1, len(continuations) + 1)]

    # ------------------------------------------------------------------ HTTP

    def _post(self, path: str, body: dict[str, Any], refused: Sequence[int] = ()) -> dict[str, Any] | None:
        """The JSON reply; None (no retry) if the server answers with an HTTP status in `refused`."""
        url = self.config.base_url.rstrip("/") + path
        headers = {"Content-Type": "application/json"}
        # Only from the environment, and only for a host the user trusts (fmrobot/security.py).
        key = security.api_key(self.config.api_key_env, self.config.base_url)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        attempts = 0

        def attempt() -> dict[str, Any] | None:
            nonlocal attempts
            attempts += 1
            self.stats["retries"] += attempts > 1
            return self._attempt(url, data, headers, key, refused)

        return retry.call(attempt, self.retry_policy)

    def _attempt(self, url: str, data: bytes, headers: dict[str, str], key: str | None,
                 refused: Sequence[int]) -> dict[str, Any] | None:
        """One request. TransientLanguageModelError for what asking again may cure (the caller's retry
        loop does), LanguageModelError for what it cannot (4xx: a wrong model, path or key)."""
        self.stats["requests"] += 1
        try:
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            with _OPENER.open(request, timeout=retry.attempt_timeout(self.config.timeout)) as response:
                reply = json.loads(response.read().decode())
        except urllib.error.HTTPError as error:
            detail = _safe_detail(error, key)
            if error.code in refused:
                log.info("HTTP %s from %s: %s", error.code, url, detail)
                self._refused_with = error.code
                return None
            problem = f"HTTP {error.code} from {url}: {detail}"
            if error.code == 429 or error.code >= 500:
                raise TransientLanguageModelError(problem) from None
            raise LanguageModelError(problem) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise TransientLanguageModelError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TransientLanguageModelError(f"{url} answered with something that is not JSON ({error})") from None
        if not isinstance(reply, dict):
            raise LanguageModelError(f"{url} answered with JSON that is not an object")
        usage = reply.get("usage") or {}
        self.stats["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        self.stats["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        return reply


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect ends the request as an HTTP error: urllib would resend a POST as a body-less GET,
    possibly to another host or scheme, with the Authorization header."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def response_format(schema: type[BaseModel], kind: str) -> dict[str, Any]:
    """The request's `response_format` that constrains the answer to `schema`, in the dialect `kind`."""
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(),
                                                       "strict": True}}
    if kind == "json_object":
        return {"type": "json_object", "schema": schema.model_json_schema()}
    raise ValueError(f"response_format must be json_schema, json_object or none, not {kind!r}")


def _chosen_option(answer: str, continuations: Sequence[str]) -> int | None:
    """The 1-based option the answer picks: its first number if that is an option, else the one
    option whose text it quotes (small models often answer with the text); None if neither."""
    found = re.search(r"\d+", answer)
    if found and 1 <= int(found.group()) <= len(continuations):
        return int(found.group())
    text = " ".join(answer.lower().split())
    quoted = [i for i, c in enumerate(continuations, start=1) if c.strip() and " ".join(c.lower().split()) in text]
    return quoted[0] if len(quoted) == 1 else None


def _safe_detail(error: urllib.error.HTTPError, key: str | None = None) -> str:
    """The start of an error reply's body on one line, with the API key blanked out: a server that
    refuses a key may quote it back, and this text ends up in logs and episode failure reasons."""
    try:
        text = error.read().decode(errors="replace")
    except Exception:
        text = ""
    if key:
        text = text.replace(key, "<redacted>")
    return " ".join(text.split())[:200] or str(error.reason or "")
