"""A deterministic chat model that needs no LLM: it emits real tool calls from the bound tool schemas,
so the LangGraph agents run end to end offline (tests, CI, benchmarks)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from models.schema_args import sample_args

MAX_TOOL_TURNS = 4


class OfflineChatModel(BaseChatModel):
    """Policy: first call a tool that needs no arguments (a look around), then a tool with arguments
    filled from its schema, chosen by a hash of the conversation; after MAX_TOOL_TURNS, answer in text."""

    seed: int = 0
    tools: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(self, tools: list[Any], **kwargs: Any) -> OfflineChatModel:  # type: ignore[override]
        return self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        transcript = json.dumps([(m.type, str(m.content)) for m in messages])
        digest = hashlib.sha256(f"{self.seed}|{transcript}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        turns = sum(isinstance(m, ToolMessage) for m in messages)
        functions = [t["function"] for t in self.tools]
        if not functions or turns >= MAX_TOOL_TURNS:
            letter = "AB"[int(rng.integers(2))]
            reply = AIMessage(content=f"I have reviewed the situation. My answer is {letter}.")
        else:
            no_args = [f for f in functions if not f.get("parameters", {}).get("required")]
            with_args = [f for f in functions if f.get("parameters", {}).get("required")] or functions
            pool = no_args if turns == 0 and no_args else with_args
            fn = pool[int(rng.integers(len(pool)))]
            args = sample_args(fn.get("parameters", {}), rng)
            call_id = f"call_{digest[8:14].hex()}"
            reply = AIMessage(content="", tool_calls=[{"name": fn["name"], "args": args, "id": call_id}])
        return ChatResult(generations=[ChatGeneration(message=reply)])
