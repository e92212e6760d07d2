"""OpenAICompatibleLM asks the server for schema-constrained output in the dialect configured."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner, plan_schema
from fmrobot.testing import synthetic_context, synthetic_scene

PLAN = json.dumps({"steps": [{"skill": "pick", "args": {"object": "red block"}},
                             {"skill": "place", "args": {"target": "green bowl"}}]})


class RecordingServer:
    """A chat endpoint on loopback that keeps every request body; `refuse_json_schema` answers 422
    to a json_schema response_format, as llama.cpp's server does."""

    def __init__(self, answer: str = PLAN, refuse_json_schema: bool = False):
        self.bodies: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                owner.bodies.append(body)
                kind = (body.get("response_format") or {}).get("type")
                if refuse_json_schema and kind == "json_schema":
                    return self.reply(422, {"error": {"message": "json_schema is not supported"}})
                self.reply(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]})

            def reply(self, status: int, document: dict) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def backend(self, **settings) -> OpenAICompatibleLM:
        url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        return OpenAICompatibleLM(OpenAICompatibleConfig(base_url=url, model="fake", api_key_env=None, retries=0,
                                                         **settings))

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def plan_through(server: RecordingServer, **settings):
    planner = LlmStructuredPlanner(LlmStructuredConfig(max_attempts=2), llm=server.backend(**settings))
    return planner.plan("put the red block in the green bowl", synthetic_scene(), synthetic_context())


def test_json_schema_is_the_default_and_carries_the_plan_schema():
    with RecordingServer() as server:
        decision = plan_through(server)
    assert len(decision.plan.steps) == 2
    expected = plan_schema(synthetic_context().skills, synthetic_scene().labels, max_steps=20).model_json_schema()
    sent = server.bodies[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["name"] == "PlanJSON" and sent["json_schema"]["schema"] == expected
    assert "green bowl" in json.dumps(sent)  # object arguments are enums of the perceived labels


def test_json_object_is_llama_cpp_s_dialect():
    with RecordingServer(refuse_json_schema=True) as server:
        decision = plan_through(server, response_format="json_object")
    assert len(decision.plan.steps) == 2
    sent = server.bodies[0]["response_format"]
    assert sent["type"] == "json_object" and "red block" in json.dumps(sent["schema"]) and "json_schema" not in sent


def test_none_sends_no_response_format_and_the_planner_still_validates():
    bad = json.dumps({"steps": [{"skill": "pick", "args": {"object": "unicorn"}}]})
    with RecordingServer(answer=bad) as server:
        with pytest.raises(Exception, match="no valid plan after 2 attempts"):
            plan_through(server, response_format="none")
    assert len(server.bodies) == 2 and all("response_format" not in b for b in server.bodies)


def test_generate_without_a_schema_sends_no_response_format():
    from fmrobot.interfaces import Message

    with RecordingServer(answer="hello") as server:
        assert server.backend().generate([Message(role="user", content="hi")]) == "hello"
    assert "response_format" not in server.bodies[0]


def test_an_unknown_dialect_is_refused_by_the_config():
    with pytest.raises(Exception, match="response_format"):
        OpenAICompatibleConfig(model="fake", response_format="grammar")
