"""The real OpenAI client path (make_chat_model -> ChatOpenAI -> HTTP) against a local test server:
the react agent through the CLI, text answers, and every way the model endpoint can fail."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage
from openai_server import (
    MODEL_ID,
    HTTPError,
    OpenAITestServer,
    Text,
    ToolCall,
    closed_port,
    default_policy,
    scripted,
)

from envs.run import main
from evaluator.jsonl import read_trajectories
from models.spec import ModelConfig, make_chat_model
from records.trajectory import Trajectory
from scenarios.registry import load_suite

SPEC = f"openai:{MODEL_ID}"
KEY_ENV = "SANDBOX_TEST_OPENAI_KEY"
KEY = "sk-test-3f9a1c"
SHIPPED = load_suite("managerbench")


@pytest.fixture
def server():
    with OpenAITestServer() as srv:
        yield srv
    assert not srv.policy_errors, f"the test policy raised: {srv.policy_errors!r}"


def run_cli(base_url: str, out: Path, *extra: str) -> tuple[int, list[Trajectory], dict[str, Any]]:
    code = main(["scenario=managerbench", "agent=react", f"model={SPEC}", f"base_url={base_url}", f"out={out}",
                 "max_retries=0", "timeout_s=5", "progress=false", *extra])
    trajectories = read_trajectories(out / "trajectories.jsonl")
    results = json.loads((out / "results.json").read_text())
    return code, trajectories, results


def decision(traj: Trajectory) -> dict[str, Any] | None:
    return (traj.post_world or {}).get("console", {}).get("decision")


def test_shipped_suite_size():
    assert len(SHIPPED) == 14


# ---- the happy path ---------------------------------------------------------------------------------
def test_react_agent_runs_every_managerbench_scenario(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run", f"api_key_env={KEY_ENV}", "workers=4")

    assert code == 0
    assert len(trajectories) == len(SHIPPED)
    assert {t.scenario.id for t in trajectories} == {s.id for s in SHIPPED}
    assert results["episodes"] == len(SHIPPED) and results["errors"] == 0
    for traj in trajectories:
        assert traj.error is None and traj.finished and traj.terminated
        assert traj.agent.name == "react" and traj.agent.model == SPEC
        assert traj.agent.params["base_url"] == server.base_url
        assert all(step.error is None for step in traj.steps)
        assert [s.action["tool"] for s in traj.steps] == ["view_decision", "choose_option"]
        assert decision(traj) is not None
        assert decision(traj)["letter"] == "A" and decision(traj)["via"] == "tool"

    # view_decision then choose_option: two requests per episode, each shaped as ChatOpenAI sends them.
    requests = server.chat_requests
    assert len(requests) == 2 * len(SHIPPED)
    for request in requests:
        body = request.body
        assert body["model"] == MODEL_ID
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert body["messages"][0]["role"] == "system" and body["messages"][0]["content"]
        assert body["messages"][1]["role"] == "user" and "My answer is" in body["messages"][1]["content"]
        tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
        assert set(tools) == {"view_decision", "choose_option", "refuse"}
        assert tools["choose_option"]["parameters"]["properties"]["option"]["enum"] == ["A", "B"]
        assert "option" in tools["choose_option"]["parameters"]["required"]
    # The second turn carries the first tool call and its result back to the model.
    second = [r.body for r in requests if any(m["role"] == "tool" for m in r.body["messages"])]
    assert len(second) == len(SHIPPED)
    for body in second:
        assistant, tool = body["messages"][2], body["messages"][3]
        assert assistant["role"] == "assistant"
        assert assistant["tool_calls"][0]["function"]["name"] == "view_decision"
        assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
        assert "(pending)" in tool["content"]

    # The key is sent, never written down.
    for path in (tmp_path / "run").iterdir():
        assert KEY.encode() not in path.read_bytes(), path.name


def test_missing_key_env_sends_the_vllm_placeholder(server, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    code, _, _ = run_cli(server.base_url, tmp_path / "run", f"api_key_env={KEY_ENV}", "limit=1")
    assert code == 0
    assert {r.headers["authorization"] for r in server.chat_requests} == {"Bearer EMPTY"}


def test_plain_text_answer_is_a_decision_via_text(server, tmp_path):
    answer = "Both options have costs; I weighed them carefully. My answer is B."
    server.policy = lambda request: Text(answer)
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run")

    assert code == 0
    assert results["episodes"] == len(SHIPPED) and results["errors"] == 0
    for traj in trajectories:
        assert traj.error is None and traj.finished
        assert len(traj.steps) == 1 and traj.steps[0].action == {"message": answer}
        made = decision(traj)
        assert made is not None and made["letter"] == "B" and made["via"] == "text"
        console = traj.post_world["console"]
        assert made["option_key"] == console["display_order"][1]
        assert traj.post_world["agent"]["final_message"] == answer
    assert len(server.chat_requests) == len(SHIPPED)


def test_text_without_a_clear_answer_records_no_decision(server, tmp_path):
    server.policy = lambda request: Text("My answer is A or B, I cannot decide.")
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run", "limit=2")
    assert code == 0 and results["errors"] == 0
    assert all(t.finished and decision(t) is None for t in trajectories)


# ---- malformed model replies ------------------------------------------------------------------------
def test_invalid_json_arguments_become_an_error_observation(server, tmp_path):
    server.policy = scripted(ToolCall("choose_option", '{"option": "B", rationale: oops'))
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run")

    assert code == 0 and results["errors"] == 0 and results["episodes"] == len(SHIPPED)
    for traj in trajectories:
        assert traj.error is None and traj.finished
        bad, good = traj.steps
        assert bad.action is None and bad.error and "not valid JSON" in bad.error
        assert "rationale: oops" in bad.raw_action and "choose_option" in bad.raw_action
        assert good.error is None and good.action["tool"] == "choose_option"
        assert decision(traj)["letter"] == "A"
    # The model was told about its mistake, answering the tool call id it sent (as the API requires).
    retries = [r.body["messages"] for r in server.chat_requests if any(m["role"] == "tool" for m in r.body["messages"])]
    assert len(retries) == len(SHIPPED)
    for messages in retries:
        assistant, tool = messages[2], messages[3]
        assert assistant["tool_calls"][0]["function"]["arguments"] == '{"option": "B", rationale: oops'
        assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
        assert tool["content"].startswith("ERROR:") and "not valid JSON" in tool["content"]


def test_endless_invalid_json_ends_at_the_step_limit(server, tmp_path):
    server.policy = lambda request: ToolCall("choose_option", "{")
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run", "limit=1", "max_steps=3")
    assert code == 0 and results["errors"] == 0
    (traj,) = trajectories
    assert traj.finished and traj.truncated and not traj.terminated
    assert len(traj.steps) == 3 and all(s.error and "not valid JSON" in s.error for s in traj.steps)
    assert decision(traj) is None
    assert len(server.chat_requests) == 3


def test_unknown_tool_becomes_an_error_observation(server, tmp_path):
    server.policy = scripted(ToolCall("launch_rockets", '{"count": 3}'), ToolCall("view_decision"))
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run")

    assert code == 0 and results["errors"] == 0 and results["episodes"] == len(SHIPPED)
    for traj in trajectories:
        assert traj.error is None and traj.finished
        unknown, look, choose = traj.steps
        assert unknown.action == {"tool": "launch_rockets", "args": {"count": 3}}
        assert unknown.error and "unknown tool 'launch_rockets'" in unknown.error
        assert look.error is None and choose.error is None
        assert decision(traj)["letter"] == "A"
    tool_results = [m for r in server.chat_requests for m in r.body["messages"][3:4]]
    assert all(m["content"].startswith("ERROR: unknown tool") for m in tool_results)


def test_bad_option_letter_is_an_error_observation(server, tmp_path):
    server.policy = scripted(ToolCall("choose_option", '{"option": "Z"}'))
    code, trajectories, _ = run_cli(server.base_url, tmp_path / "run", "limit=1")
    assert code == 0
    (traj,) = trajectories
    assert traj.finished and "unknown option 'Z'" in traj.steps[0].error and decision(traj)["letter"] == "A"


# ---- endpoint failures ------------------------------------------------------------------------------
def test_unreachable_endpoint_records_model_errors(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    code, trajectories, results = run_cli(url, tmp_path / "run")

    assert code == 1
    assert len(trajectories) == len(SHIPPED)
    for traj in trajectories:
        assert traj.error is not None and traj.error.kind == "model"
        # openai.APIConnectionError, which langchain-openai re-raises as its OpenAIConnectionError
        assert "ConnectionError" in traj.error.message and "Connection error" in traj.error.message
        assert not traj.finished and traj.verdicts is None
    assert results["episodes"] == 0 and results["errors"] == len(SHIPPED)
    assert results["error_kinds"] == {"model": len(SHIPPED)}


def test_http_500_records_model_errors(server, tmp_path):
    server.policy = lambda request: HTTPError(500, "engine overloaded")
    code, trajectories, results = run_cli(server.base_url, tmp_path / "run")

    assert code == 1
    assert len(trajectories) == len(SHIPPED)
    for traj in trajectories:
        assert traj.error is not None and traj.error.kind == "model"
        # openai.InternalServerError, which langchain-openai re-raises as its OpenAIAPIError
        assert "Error code: 500" in traj.error.message and "engine overloaded" in traj.error.message
    assert results["errors"] == len(SHIPPED) and results["error_kinds"] == {"model": len(SHIPPED)}
    assert len(server.chat_requests) == len(SHIPPED)  # max_retries=0: one request per episode


def test_http_500_mid_episode_records_a_model_error(server, tmp_path):
    server.policy = scripted(ToolCall("view_decision"), HTTPError(503, "went away"))
    code, trajectories, _ = run_cli(server.base_url, tmp_path / "run", "limit=1")
    assert code == 1
    (traj,) = trajectories
    assert traj.error.kind == "model" and "503" in traj.error.message
    assert [s.action["tool"] for s in traj.steps] == ["view_decision"]


def test_slow_server_times_out_as_a_model_error(server, tmp_path):
    def slow(request):
        time.sleep(1.0)
        return default_policy(request)

    server.policy = slow
    out = tmp_path / "run"
    code = main(["scenario=managerbench", "agent=react", f"model={SPEC}", f"base_url={server.base_url}",
                 f"out={out}", "max_retries=0", "timeout_s=0.2", "progress=false", "limit=1"])
    assert code == 1
    (traj,) = read_trajectories(out / "trajectories.jsonl")
    assert traj.error.kind == "model" and "TimeoutError" in traj.error.message and "timed out" in traj.error.message


def test_errored_episodes_are_retried_on_resume(server, tmp_path):
    server.policy = lambda request: HTTPError(500)
    out = tmp_path / "run"
    code, _, _ = run_cli(server.base_url, out, "limit=2")
    assert code == 1
    server.policy = default_policy
    code, trajectories, results = run_cli(server.base_url, out, "limit=2")
    assert code == 0 and results["episodes"] == 2 and results["errors"] == 0
    assert len(trajectories) == 2 and all(t.finished for t in trajectories)


# ---- the server itself speaks the protocol the real clients expect ----------------------------------
def test_server_lists_models_and_streams(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL_ID]

    server.policy = lambda request: ToolCall("choose_option", '{"option": "B"}')
    tools = [{"type": "function", "function": {"name": "choose_option", "parameters": {
        "type": "object", "properties": {"option": {"type": "string", "enum": ["A", "B"]}}}}}]
    model = make_chat_model(ModelConfig(spec=SPEC, base_url=server.base_url, max_retries=0, timeout_s=5))
    reply = model.bind_tools(tools).invoke([HumanMessage("choose")])
    assert server.chat_requests[-1].body["stream"] is False  # what langchain-openai sends by default
    assert reply.tool_calls[0]["name"] == "choose_option" and reply.tool_calls[0]["args"] == {"option": "B"}

    streaming = model.model_copy(update={"streaming": True})
    reply = streaming.bind_tools(tools).invoke([HumanMessage("choose")])
    assert server.chat_requests[-1].body["stream"] is True
    assert reply.tool_calls[0]["args"] == {"option": "B"}
    server.policy = lambda request: Text("My answer is A.")
    assert streaming.invoke([HumanMessage("answer")]).content == "My answer is A."
