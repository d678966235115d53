"""A ReAct agent as a LangGraph StateGraph: the model proposes tool calls, the env executes them."""

from __future__ import annotations

import contextlib
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, MessagesState, StateGraph

from agents.base import Agent, AgentSpec
from envs.actions import FinalMessage
from envs.env import SafetyEnv
from models.spec import make_chat_model
from records.trajectory import AgentInfo


def _env(config: RunnableConfig) -> SafetyEnv:
    return config["configurable"]["env"]


def _model_node(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    reply = config["configurable"]["llm"].invoke(state["messages"])
    return {"messages": [reply]}


def _tools_node(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    env = _env(config)
    last = state["messages"][-1]
    # A call whose arguments are not valid JSON lands in invalid_tool_calls; the env gets it as sent, records
    # the error step and the model sees the error, as for any other bad call.
    calls = [({"tool": c["name"], "args": c["args"]}, c) for c in last.tool_calls]
    calls += [({"name": c["name"], "arguments": c["args"]}, c) for c in last.invalid_tool_calls]
    results = []
    for action, call in calls:
        if env.done:  # an earlier call in this turn ended the episode
            content = "Not run: the episode has ended."
        else:
            obs, *_ = env.step(action)
            content = f"ERROR: {obs['last_action_error']}" if obs["last_action_error"] else obs["observation"]
        results.append(ToolMessage(content=content, tool_call_id=call["id"], name=call["name"]))
    return {"messages": results}


def _final_node(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    last = state["messages"][-1]
    text = last.content if isinstance(last.content, str) else str(last.content)
    _env(config).step(FinalMessage(message=text))
    return {}


def _after_model(state: MessagesState, config: RunnableConfig) -> str:
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return "tools"
    return "final"


def _after_tools(state: MessagesState, config: RunnableConfig) -> str:
    return END if _env(config).done else "model"


def build_react_graph():
    graph = StateGraph(MessagesState)
    graph.add_node("model", _model_node)
    graph.add_node("tools", _tools_node)
    graph.add_node("final", _final_node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", _after_model, ["tools", "final"])
    graph.add_conditional_edges("tools", _after_tools, ["model", END])
    graph.add_edge("final", END)
    return graph.compile()


def initial_messages(env: SafetyEnv) -> list:
    kinds = {"system": SystemMessage, "user": HumanMessage}
    messages = [kinds[m["role"]](content=m["content"]) for m in env.messages]
    if first := env.observation.get("observation"):  # a page shown before any action (the desktop's): act on it
        messages.append(HumanMessage(content=f"What the screen shows now:\n{first}"))
    return messages


class ReactAgent(Agent):
    name = "react"
    needs_model = True

    @classmethod
    def from_spec(cls, spec: AgentSpec) -> ReactAgent:
        return cls(make_chat_model(spec.model), model_info=spec.model.public())

    def __init__(self, model: BaseChatModel, model_info: dict[str, Any] | None = None) -> None:
        self.model = model
        self.model_info = model_info or {}
        self.graph = build_react_graph()

    def info(self) -> AgentInfo:
        return AgentInfo(name=self.name, model=self.model_info.get("spec"), params=self.model_info)

    def run(self, env: SafetyEnv) -> None:
        llm = self.model.bind_tools([spec.as_openai() for spec in env.tool_specs()])
        # Each step is at most three graph nodes; leave room for the env's own step limit to end it.
        limit = 3 * (env.max_steps or env.scenario.max_steps) + 5
        with contextlib.suppress(GraphRecursionError):
            self.graph.invoke({"messages": initial_messages(env)},
                              config={"configurable": {"env": env, "llm": llm}, "recursion_limit": limit})
        if not env.done:
            env.end_episode("react agent stopped before the episode ended")
