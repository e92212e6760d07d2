"""OpenAICompatibleLM asks the server for schema-constrained output in the dialect configured."""

from __future__ import annotations

import json

import pytest

from fmrobot.llm.openai_compatible import OpenAICompatibleConfig, OpenAICompatibleLM
from fmrobot.planning.llm_structured import LlmStructuredConfig, LlmStructuredPlanner, plan_schema
from fmrobot.testing import synthetic_context, synthetic_scene
from tests.fakes import LoopbackServer, chat_reply, read_json, send_json

PLAN = json.dumps({"steps": [{"skill": "pick", "args": {"object": "red block"}},
                             {"skill": "place", "args": {"target": "green bowl"}}]})


class RecordingServer(LoopbackServer):
    """A chat endpoint on loopback that keeps every request body; `refuse_json_schema` answers 422
    to a json_schema response_format, as llama.cpp's server does."""

    def __init__(self, answer: str = PLAN, refuse_json_schema: bool = False):
        super().__init__()
        self.answer, self.refuse_json_schema = answer, refuse_json_schema
        self.bodies: list[dict] = []

    def handle_post(self, request) -> None:
        body = read_json(request)
        self.bodies.append(body)
        if self.refuse_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            return send_json(request, 422, {"error": {"message": "json_schema is not supported"}})
        send_json(request, 200, chat_reply(self.answer))

    def backend(self, **settings) -> OpenAICompatibleLM:
        return OpenAICompatibleLM(OpenAICompatibleConfig(base_url=self.base_url, model="fake", api_key_env=None,
                                                         retries=0, **settings))


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
