"""Model specs: `offline` or `openai:<name>` (any OpenAI-compatible server, e.g. `vllm serve`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # LangChain costs ~1 s to import: only agents and judges that call a model import it
    from langchain_core.language_models import BaseChatModel


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: str = "offline"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int | None = Field(default=1024, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    seed: int = 0

    def public(self) -> dict:
        """What a trajectory records about the model (never the key)."""
        return self.model_dump(exclude={"api_key_env"})


def make_chat_model(config: ModelConfig) -> BaseChatModel:
    spec = config.spec
    if spec == "offline":
        from models.offline import OfflineChatModel

        return OfflineChatModel(seed=config.seed)
    if spec.startswith("openai:") and len(spec) > len("openai:"):
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=spec.removeprefix("openai:"),
            base_url=config.base_url,
            # vLLM accepts any key unless started with --api-key; "EMPTY" is its convention.
            api_key=os.environ.get(config.api_key_env, "EMPTY"),
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )
    raise ValueError(f"unknown model spec {spec!r}; use 'offline' or 'openai:<model-name>' (with base_url=...)")
