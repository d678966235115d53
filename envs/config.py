"""Run configuration from `key=value` arguments (an OmegaConf dotlist), validated by pydantic.

Everything that can be checked without running an episode is checked here: value ranges, the store's
URL, the out folder's shape; `envs.runner` then proves the out folder writable and locks it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from envs.cli_args import ArgumentError, split_key_values
from envs.world.validation_messages import error_location
from evaluator.judges import JUDGES, judge_names
from models.spec import ModelConfig

# The store keeps seeds in a signed 64-bit column; the environment's seeding refuses negative seeds.
MAX_SEED = 2**63 - 1


class ConfigError(ArgumentError):
    """A bad command-line argument; the message says which and suggests a fix."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scenario: str = Field(description="suite name, scenario id or glob; comma-separated for several")
    agent: str = "react"
    model: str = "offline"
    backend: str = "sim"
    variant: str = Field(default="default",
                         description="variant name, comma list, 'all', or 'default' (each scenario's base variant, "
                                     "or all its variants when it has no base)")
    out: str | None = Field(default=None, description="run directory (default runs/<scenario>-<agent>)")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="episode seed, 0 to 2**63-1")
    workers: int = Field(default=1, ge=1, le=64)
    executor: Literal["auto", "processes", "threads"] = Field(
        default="auto", description="workers>1: processes (CPU-bound work) or threads (agents waiting on a model "
                                    "endpoint); auto picks threads for a model=openai:... agent, else processes")
    limit: int | None = Field(default=None, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    command_timeout_s: float = Field(default=30.0, gt=0, le=600, description="shell backends: per command")
    source: str | None = Field(default=None, description="data folder for imported suites")
    items: str = Field(default="official", description="ManagerBench items: official or all")
    db: str | None = Field(default=None, description="SQLAlchemy URL (default: sqlite in the run dir)")
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=1024, ge=1)
    timeout_s: float = Field(default=120.0, gt=0, description="model calls: per request")
    max_retries: int = Field(default=2, ge=0, le=100)
    judges: str | None = Field(default=None, description="judges to run after each scored episode, comma-separated "
                                                         "(entry-point group safety_sandbox.judge)")
    progress: bool = True

    @field_validator("out")
    @classmethod
    def _out_is_a_folder(cls, out: str | None) -> str | None:
        if out is None:
            return out
        if not out.strip():
            raise ValueError("empty folder name; leave out= away for the default runs/<scenario>-<agent>")
        path = Path(out)
        for place in (path, *path.parents):
            try:
                is_file = place.exists() and not place.is_dir()
            except OSError as exc:  # e.g. a name longer than the file system allows
                raise ValueError(f"not a usable folder name: {exc.strerror}") from None
            if is_file:
                raise ValueError(f"{place} is a file, not a folder; choose another out=")
        return out

    @field_validator("judges")
    @classmethod
    def _judges_are_known(cls, judges: str | None) -> str | None:
        """An unknown or broken judge fails here, before any episode runs (nothing is imported but the judges)."""
        names = judge_names(judges)
        if judges is not None and not names:
            raise ValueError("no judge named; leave judges= away to run none")
        for name in names:
            if name not in JUDGES:
                raise ValueError(JUDGES.unknown_message(name))
        return ",".join(names) if names else None

    @field_validator("db")
    @classmethod
    def _db_url_loads(cls, db: str | None) -> str | None:
        """An unknown scheme or a driver that is not installed fails here, not after the episodes ran."""
        if db is None:
            return db
        # Imported here: SQLAlchemy costs ~0.15 s, paid only by a run that names a store URL.
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError as UrlError
        from sqlalchemy.exc import NoSuchModuleError

        try:
            create_engine(db).dispose()  # parses the URL and imports the driver; connects to nothing
        except NoSuchModuleError:  # a subclass of UrlError: catch it first
            scheme = db.split(":", 1)[0]
            raise ValueError(f"unknown database scheme {scheme!r} (e.g. sqlite:///path/to/store.sqlite)") from None
        except UrlError:
            raise ValueError("not a SQLAlchemy URL (e.g. sqlite:///path/to/store.sqlite)") from None
        except ImportError as exc:
            raise ValueError(f"the driver for this URL is not installed ({exc}); pip install it") from None
        return db

    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.scenario}-{self.agent}")
        return Path("runs") / slug

    def chat_model(self) -> ModelConfig:
        return ModelConfig(spec=self.model, base_url=self.base_url, api_key_env=self.api_key_env,
                           temperature=self.temperature, max_tokens=self.max_tokens, timeout_s=self.timeout_s,
                           max_retries=self.max_retries, seed=self.seed)


def usage() -> str:
    lines = ["usage: python -m envs.run scenario=<suite|id|glob>[,...] [key=value ...]", "", "keys:"]
    for name, field in RunConfig.model_fields.items():
        default = "required" if field.is_required() else f"default {field.get_default()!r}"
        about = f"{field.description}; " if field.description else ""
        lines.append(f"  {name:<18} {about}{default}")
    lines.append("")
    lines.append("exit codes: 0 all episodes scored, 1 some episodes errored or judgements failed, 2 bad arguments, "
                 "130 interrupted")
    return "\n".join(lines)


def _not_yaml(value: str) -> bool:
    try:
        yaml.safe_load(value)
    except yaml.YAMLError:
        return True
    return False


def parse_args(argv: list[str]) -> RunConfig:
    # `+key=value` (Hydra's "add a key") is accepted as `key=value`.
    argv = [a.lstrip("+") for a in argv]
    try:
        _, given = split_key_values(argv, RunConfig.model_fields)
    except ArgumentError as exc:
        raise ConfigError(str(exc)) from None
    try:
        raw = OmegaConf.to_container(OmegaConf.from_dotlist([f"{k}={v}" for k, v in given.items()]), resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"could not parse arguments: {exc}") from None
    except yaml.YAMLError as exc:  # OmegaConf reads each value as YAML: `judges=,` is not a value
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        culprit = next((f"{k}={v}" for k, v in given.items() if _not_yaml(v)), "an argument")
        raise ConfigError(f"{culprit}: not a value ({problem}); quote it or leave it out") from None
    # Values such as model=openai:x or scenario=a,b must stay strings, whatever YAML makes of them.
    raw = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in raw.items()}
    if "scenario" not in raw:
        raise ConfigError("scenario=<suite|id|glob> is required (try: python -m scenarios list)")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{error_location(err['loc'])}={given.get(str(err['loc'][0]), '')}: {message}") from None
