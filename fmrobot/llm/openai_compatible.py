"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, `transformers serve`).

The base URL and model come from the config; the API key only from the environment
variable the config names, and it never appears in a message, log or result.
Requests have a timeout and a bounded number of retries (connection errors, 429, 5xx).

Scoring needs token log-probabilities of a given text. Where the server returns them
for an echoed prompt (`/v1/completions` with `echo` and `logprobs`, as vLLM does), a
continuation scores the sum of its tokens' log-probabilities. Where it does not (for
example `transformers serve` ignores `logprobs` and `echo`), the documented fallback
is choice: the model is shown the numbered continuations and asked for the best
number; the chosen one scores 0 and the others -1000. That ranks but is not a
likelihood, so calibration and conformal sets degrade to a single choice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import LanguageModelError
from fmrobot.interfaces import Message

log = logging.getLogger(__name__)
NOT_CHOSEN = -1000.0


class OpenAICompatibleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"  # the name of the variable, never the key
    timeout: float = Field(default=30.0, gt=0.0)  # seconds per request
    retries: int = Field(default=2, ge=0)  # extra attempts after a connection error, 429 or 5xx
    backoff: float = Field(default=0.5, ge=0.0)  # seconds before the first retry, doubling
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    scoring: Literal["auto", "logprobs", "choice"] = "auto"  # auto: logprobs if the server gives them
    json_schema: bool = True  # ask the server for schema-constrained output when a schema is given


class OpenAICompatibleLM:
    Config = OpenAICompatibleConfig

    def __init__(self, config: OpenAICompatibleConfig):
        self.config = config
        self.scoring = config.scoring
        self.stats = {"requests": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}

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
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        if schema is not None and self.config.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": schema.__name__, "schema": schema.model_json_schema(), "strict": True}}
        reply = self._post("/chat/completions", body)
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as error:
            raise LanguageModelError(f"{self.config.base_url}: malformed chat reply ({error!r})") from None

    # ------------------------------------------------------------------ scoring

    def _score_logprobs(self, prompt: str, continuations: Sequence[str]) -> list[float] | None:
        body = {"model": self.config.model, "prompt": [prompt + c for c in continuations], "max_tokens": 1,
                "echo": True, "logprobs": 0, "temperature": 0.0}
        reply = self._post("/completions", body)
        choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(continuations):
            return None
        scores = []
        for choice in choices:
            logprobs = choice.get("logprobs") or {}
            tokens, values, offsets = (logprobs.get(k) for k in ("tokens", "token_logprobs", "text_offset"))
            if not tokens or not values or not offsets or len(values) != len(offsets):
                return None
            # Tokens that start at or after the prompt's end belong to the continuation
            # (the last one is the single generated token).
            total = sum(v for v, o in zip(values[:-1], offsets[:-1]) if o >= len(prompt) and v is not None)
            scores.append(float(total))
        return scores

    def _score_by_choice(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        options = "\n".join(f"{i}. {c.strip()}" for i, c in enumerate(continuations, start=1))
        messages = [
            Message(role="system", content="Answer with the number of the best option only."),
            Message(role="user", content=f"{prompt}\n\nWhich continuation is best?\n{options}\nNumber:"),
        ]
        answer = self.generate(messages)
        found = re.search(r"\d+", answer)
        choice = int(found.group()) if found else 0
        if not 1 <= choice <= len(continuations):
            raise LanguageModelError(f"the model answered {answer[:80]!r}, not an option number 1..{len(continuations)}")
        return [0.0 if i == choice else NOT_CHOSEN for i in range(1, len(continuations) + 1)]

    # ------------------------------------------------------------------ HTTP

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.config.base_url.rstrip("/") + path
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            self.stats["requests"] += 1
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                    reply = json.loads(response.read().decode())
                usage = reply.get("usage") or {}
                self.stats["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
                self.stats["completion_tokens"] += int(usage.get("completion_tokens") or 0)
                return reply
            except urllib.error.HTTPError as error:
                detail = _safe_detail(error)
                retryable = error.code == 429 or error.code >= 500
                problem = f"HTTP {error.code} from {url}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
                reason = getattr(error, "reason", error)
                retryable, problem = True, f"cannot reach {url}: {reason}"
            except json.JSONDecodeError as error:
                retryable, problem = True, f"{url} answered with something that is not JSON ({error.msg})"
            if not retryable or attempt == self.config.retries:
                raise LanguageModelError(f"{problem} (after {attempt + 1} attempt(s))")
            self.stats["retries"] += 1
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def _safe_detail(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read().decode(errors="replace")
    except Exception:
        text = ""
    return " ".join(text.split())[:200] or error.reason or ""
