"""Run configuration from `key=value` arguments (an OmegaConf dotlist), validated by pydantic."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.models import ModelConfig


class ConfigError(ValueError):
    """A bad command-line argument; the message says which and suggests a fix."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str = Field(description="suite name, scenario id or glob; comma-separated for several")
    agent: str = "react"
    model: str = "offline"
    backend: str = "sim"
    variant: str = Field(default="default",
                         description="variant name, comma list, 'all', or 'default' (each scenario's base variant, "
                                     "or all its variants when it has no base)")
    out: str | None = Field(default=None, description="run directory (default runs/<scenario>-<agent>)")
    seed: int = 0
    workers: int = Field(default=1, ge=1, le=64)
    limit: int | None = Field(default=None, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    command_timeout_s: float = Field(default=30.0, gt=0, le=600, description="shell backends: per command")
    source: str | None = Field(default=None, description="data folder for imported suites")
    items: str = Field(default="official", description="ManagerBench items: official or all")
    db: str | None = Field(default=None, description="SQLAlchemy URL (default: sqlite in the run dir)")
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int | None = 1024
    timeout_s: float = 120.0
    max_retries: int = 2
    progress: bool = True

    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.scenario}-{self.agent}")
        return Path("runs") / slug

    def chat_model(self) -> ModelConfig:
        return ModelConfig(spec=self.model, base_url=self.base_url, api_key_env=self.api_key_env,
                           temperature=self.temperature, max_tokens=self.max_tokens, timeout_s=self.timeout_s,
                           max_retries=self.max_retries, seed=self.seed)


def parse_args(argv: list[str]) -> RunConfig:
    bad = [a for a in argv if "=" not in a or a.startswith("=")]
    if bad:
        raise ConfigError(f"arguments must be key=value, got {bad[0]!r}")
    known = list(RunConfig.model_fields)
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown key {key!r}{hint}")
    try:
        raw = OmegaConf.to_container(OmegaConf.from_dotlist([a.lstrip("+") for a in argv]), resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"could not parse arguments: {exc}") from None
    # Values such as model=openai:x or scenario=a,b must stay strings, whatever YAML makes of them.
    raw = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in raw.items()}
    if "scenario" not in raw:
        raise ConfigError("scenario=<suite|id|glob> is required (try: python -m scenarios list)")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{'.'.join(map(str, err['loc']))}: {err['msg']} (got {err.get('input')!r})") from None
