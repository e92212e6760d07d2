"""What the OpenAI-compatible client retries (timeouts, refused connections, 429, 5xx) and what it
does not (4xx, redirects), and which base URLs it accepts."""

from __future__ import annotations

import socket
import threading

import pytest

from fmrobot import registry
from fmrobot.errors import ConfigError, LanguageModelError
from fmrobot.interfaces import Message
from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
from tests.fakes import LoopbackServer, chat_reply, read_json, send_json

HELLO = [Message(role="user", content="Hi")]


class StatusServer(LoopbackServer):
    """A chat endpoint on loopback that answers each request with the next of `statuses` (then 200
    with "fine"); `hang` makes it never answer, until the server is closed."""

    def __init__(self, statuses: list[int] = (), hang: bool = False, headers: dict[str, str] | None = None):
        super().__init__()
        self.statuses, self.requests = list(statuses), 0
        self.hang, self.headers = hang, headers
        self.released = threading.Event()

    def handle_post(self, request) -> None:
        read_json(request)
        self.requests += 1
        if self.hang:
            self.released.wait(30)
            return
        status = self.statuses.pop(0) if self.statuses else 200
        document = chat_reply("fine") if status == 200 else {"error": {"message": f"status {status}"}}
        send_json(request, status, document, self.headers)

    def backend(self, **settings) -> OpenAICompatibleLM:
        return OpenAICompatibleLM(OpenAICompatibleConfig(base_url=self.base_url, model="fake", api_key_env=None,
                                                         **settings))

    def __exit__(self, *exc) -> None:
        self.released.set()  # a hanging handler returns, so the server can shut down
        super().__exit__(*exc)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_retried_with_growing_waits(fake_time, status):
    with StatusServer([status, status]) as server:
        lm = server.backend(retries=2, backoff=0.5)
        assert lm.generate(HELLO) == "fine"
    assert server.requests == 3 and fake_time.sleeps == [0.5, 1.0]
    assert lm.stats["requests"] == 3 and lm.stats["retries"] == 2


def test_retries_end_with_one_error_naming_the_attempts(fake_time):
    with StatusServer([503] * 10) as server:
        with pytest.raises(LanguageModelError) as caught:
            server.backend(retries=3, backoff=1.0, max_backoff=1.5).generate(HELLO)
    assert server.requests == 4 and fake_time.sleeps == [1.0, 1.5, 1.5]
    assert "HTTP 503" in str(caught.value) and "gave up after 4 attempts" in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(fake_time, status):
    with StatusServer([status]) as server:
        with pytest.raises(LanguageModelError, match=f"HTTP {status}"):
            server.backend(retries=5).generate(HELLO)
    assert server.requests == 1 and fake_time.sleeps == []


def test_a_redirect_is_not_followed(fake_time):
    with StatusServer([302], headers={"Location": "file:///etc/passwd"}) as server:
        with pytest.raises(LanguageModelError, match="HTTP 302"):
            server.backend(retries=2).generate(HELLO)
    assert server.requests == 1


def test_a_refused_connection_is_retried(fake_time):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    lm = OpenAICompatibleLM(OpenAICompatibleConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m",
                                                   api_key_env=None, retries=2))
    with pytest.raises(LanguageModelError, match="cannot reach .*gave up after 3 attempts"):
        lm.generate(HELLO)
    assert lm.stats["requests"] == 3 and len(fake_time.sleeps) == 2


def test_a_timeout_is_retried(fake_time):
    with StatusServer(hang=True) as server:
        lm = server.backend(retries=1, timeout=0.2)
        with pytest.raises(LanguageModelError, match="gave up after 2 attempts"):
            lm.generate(HELLO)
    assert server.requests == 2


def resolve(**options):
    return registry.resolve("llm", {"name": "openai", "model": "m", **options})


def test_retries_beyond_ten_are_refused_in_one_line():
    with pytest.raises(ConfigError) as caught:
        resolve(retries=1_000_000_000)
    message = str(caught.value)
    assert "invalid llm config for 'openai': retries: Input should be less than or equal to 10" in message
    assert "\n" not in message
    assert resolve(retries=10).config.retries == 10


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/v1", "gopher://h/v1", "127.0.0.1:8000/v1",
                                 "http:///v1", "javascript:alert(1)"])
def test_only_http_urls_are_accepted(url):
    with pytest.raises(ConfigError) as caught:
        resolve(base_url=url)
    message = str(caught.value)
    assert "base_url must be an http:// or https:// URL" in message and "\n" not in message
    assert resolve(base_url="https://api.example.com/v1").config.base_url == "https://api.example.com/v1"


@pytest.mark.parametrize("url", ["http://user:sk-SECRET-123@127.0.0.1:8000/v1", "https://sk-SECRET-123@host/v1",
                                 "ftp://user:sk-SECRET-123@host/"])
def test_credentials_in_the_url_are_refused_without_echoing_them(url):
    with pytest.raises(ConfigError) as caught:
        resolve(base_url=url)
    message = str(caught.value)
    assert "must not carry credentials" in message and "llm.api_key_env" in message
    assert "SECRET" not in message and "user" not in message.split("(")[0] and "\n" not in message
