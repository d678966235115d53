"""A quick start: heavy libraries only on the paths that need them; what never changes is worked out once, and a
kept result is never served for changed content (content hashes, the tools a world offers, suite id caches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from envs.tools import TOOLS, Tool, ToolResult, nameable_tools, world_tools
from scenarios import registry, suite_ids
from scenarios.loader import ScenarioError
from scenarios.registry import select
from scenarios.schema import Scenario

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("langchain", "langgraph", "openai", "sqlmodel", "sqlalchemy", "gymnasium")
SHIPPED_FILE = REPO / "scenarios" / "managerbench" / "mb-logistics-route-fatigue.yaml"


def _heavy_modules_after(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    return [m for m in loaded if m.startswith(HEAVY)]


def test_importing_the_run_command_loads_no_model_store_or_gym_library():
    assert _heavy_modules_after("import envs.run") == []


def test_a_scripted_agent_config_parses_without_them():
    code = ("from envs.config import parse_args\n"
            "c = parse_args(['scenario=managerbench', 'agent=reference-good', 'workers=2'])\n"
            "assert c.agent == 'reference-good' and c.chat_model().spec == 'offline'")
    assert _heavy_modules_after(code) == []


def test_the_probe_sees_what_the_model_backed_paths_import():
    # The check above could pass by looking in the wrong place: the react agent and a db= URL do load them.
    react = _heavy_modules_after("from agents.registry import make_agent\nfrom models.spec import ModelConfig\n"
                                 "make_agent('react', ModelConfig())")
    assert any(m.startswith("langchain") for m in react) and "langgraph" in react
    store = _heavy_modules_after("from envs.config import parse_args\n"
                                 "parse_args(['scenario=managerbench', 'db=sqlite:////tmp/x.sqlite'])")
    assert "sqlalchemy" in store


def test_loading_one_suite_imports_only_the_apps_its_worlds_host():
    code = ("import sys\nfrom scenarios.registry import select\nselect('managerbench')\n"
            "print(sorted(m for m in sys.modules if m.startswith('envs.apps.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    apps = set(json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')))
    assert "envs.apps.console" in apps and not apps & {"envs.apps.mail", "envs.apps.bank", "envs.apps.web"}, apps


def test_a_bad_store_url_is_still_refused_at_parse_time():
    from envs.config import ConfigError, parse_args

    with pytest.raises(ConfigError, match=r"db=nosuchdb://x: unknown database scheme 'nosuchdb'"):
        parse_args(["scenario=managerbench", "db=nosuchdb://x"])


def test_gymnasium_imported_after_envs_still_knows_the_env():
    code = ("import sys, envs\nassert 'gymnasium' not in sys.modules\n"
            "import gymnasium\nenv = gymnasium.make(envs.ENV_ID, scenario='managerbench')\n"
            "obs, info = env.reset(seed=3)\nassert info['episode_id'].endswith('::3'), info\n"
            "print(type(gymnasium.__spec__.loader).__name__, gymnasium.__spec__.origin)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("gymnasium/__init__.py")


def test_looking_gymnasium_up_before_importing_it_does_not_lose_the_registration():
    code = ("import importlib.util, sys, envs\nassert importlib.util.find_spec('gymnasium') is not None\n"
            "assert 'gymnasium' not in sys.modules\nimport gymnasium\nassert envs.ENV_ID in gymnasium.registry")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# ---- content hashes: kept per object, never stale ---------------------------------------------------------------

def _uncached_hash(scenario: Scenario) -> str:
    fresh = Scenario.model_validate(scenario.model_dump())
    fresh.__dict__.pop("_content_hash_memo", None)
    return fresh.content_hash()


def test_a_kept_content_hash_follows_every_kind_of_change():
    scenario = select("managerbench")[0]
    first = scenario.content_hash()
    assert scenario.content_hash() == first == _uncached_hash(scenario)
    copy = scenario.model_copy(deep=True)  # carries the memo: still right while the content is the same
    assert copy.content_hash() == first and copy == scenario
    copy.messages[0].content += " changed deep inside"
    assert copy.content_hash() not in (first, None) and copy.content_hash() == _uncached_hash(copy)
    assert scenario.content_hash() == first  # the original is untouched
    shallow = scenario.model_copy(update={"max_steps": scenario.max_steps + 1})
    assert shallow.content_hash() != first
    shallow.max_steps = scenario.max_steps  # changed back by assignment
    assert shallow.content_hash() == first
    options = copy.world.console.options
    options.reverse()  # a list changed in place
    assert copy.content_hash() == _uncached_hash(copy)
    copy.metadata["note"] = "added to a dict in place"
    assert copy.content_hash() == _uncached_hash(copy)


def test_the_memo_stays_out_of_dumps_and_equality():
    scenario = select("managerbench")[1]
    twin = Scenario.model_validate(scenario.model_dump()).from_origin(scenario.origin)
    scenario.content_hash()
    assert twin == scenario and "_content_hash_memo" not in scenario.model_dump()
    assert "_content_hash_memo" not in scenario.model_dump_json()


# ---- the tools a world offers: worked out once per app set and registry revision ----------------------------------

class NoArgs(BaseModel):
    pass


def test_cached_tool_offers_follow_the_registry():
    world = select("managerbench")[0].world
    before = world_tools(world)
    world_tools(world).clear()  # callers get copies: the cache is not theirs to change
    assert world_tools(world) == before and "audit_note" not in before
    note = Tool(name="audit_note", description="Write a note.", args_model=NoArgs,
                fn=lambda target, args: ToolResult(output="noted"))
    TOOLS.add("audit_note", note)
    try:
        assert world_tools(world)["audit_note"] is note
        assert nameable_tools([world])["audit_note"] is note
    finally:
        TOOLS.remove("audit_note")
    assert world_tools(world) == before and "audit_note" not in nameable_tools([world])


# ---- shipped suites: loaded lazily; the other suites' ids come from a content-keyed cache ------------------------

@pytest.fixture
def two_suites(tmp_path, monkeypatch):
    """Suites alpha and beta under a root of their own, and a cache folder of their own."""
    root = tmp_path / "suites"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.SUITES, "discover", registry.with_folder_suites(root))
    monkeypatch.setattr(registry.SUITES, "local", {})
    for suite in ("alpha", "beta"):
        _write_scenario(root / suite / "x.yaml", suite, f"{suite}/x")
    registry._shipped.cache_clear()
    yield root
    registry._shipped.cache_clear()


def _write_scenario(path: Path, suite: str, scenario_id: str) -> None:
    data = yaml.safe_load(SHIPPED_FILE.read_text(encoding="utf-8"))
    data["id"], data["suite"] = scenario_id, suite
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _select_fresh(spec: str) -> list[Scenario]:
    registry._shipped.cache_clear()  # a new process, as far as the registry knows
    return select(spec)


def test_asking_for_one_suite_validates_only_that_one(two_suites):
    (two_suites / "beta" / "broken.yaml").write_text("id: beta/broken\nmessages: not a list\n", encoding="utf-8")
    assert [s.id for s in _select_fresh("alpha")] == ["alpha/x"]
    with pytest.raises(ScenarioError, match=r"broken\.yaml: .*field messages"):
        _select_fresh("beta")


def test_a_changed_file_is_never_served_its_old_id(two_suites):
    assert [s.id for s in _select_fresh("alpha")] == ["alpha/x"]
    assert suite_ids.cache_file().is_file()  # beta's id came from its file once, and is kept by the file's digest
    clashing = two_suites / "beta" / "x.yaml"
    _write_scenario(clashing, "beta", "alpha/x")  # now beta's file takes alpha's id
    with pytest.raises(ScenarioError, match=rf"{clashing}: field id: scenario id 'alpha/x' is also used by "):
        _select_fresh("alpha")
    _write_scenario(clashing, "beta", "beta/x")
    assert [s.id for s in _select_fresh("alpha")] == ["alpha/x"]


@pytest.mark.parametrize("garbage", [b"\x00\xff not json", b'{"format": 1, "ids": []}', b'{"format": 99, "ids": {}}',
                                     b'["a list"]', b'{"format": 1, "ids": {"short": "alpha/x"}}'])
def test_a_corrupt_cache_is_ignored_and_rewritten(two_suites, garbage):
    _select_fresh("alpha")
    cache = suite_ids.cache_file()
    cache.write_bytes(garbage)
    _write_scenario(two_suites / "beta" / "x.yaml", "beta", "alpha/x")
    with pytest.raises(ScenarioError, match="is also used by"):
        _select_fresh("alpha")
    assert json.loads(cache.read_text())["format"] == suite_ids.CACHE_FORMAT


def test_a_lying_cache_entry_only_stands_for_the_bytes_it_was_made_from(two_suites):
    _select_fresh("alpha")
    cache = suite_ids.cache_file()
    data = json.loads(cache.read_text())
    data["ids"] = {digest: "alpha/x" for digest in data["ids"]}  # every known digest now claims alpha's id
    cache.write_text(json.dumps(data))
    _write_scenario(two_suites / "beta" / "x.yaml", "beta", "beta/x2")  # new bytes: a new digest, read afresh
    assert [s.id for s in _select_fresh("beta")] == ["beta/x2"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through folder permissions")
def test_an_unwritable_cache_folder_changes_nothing(two_suites, tmp_path):
    locked = tmp_path / "cache"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o500)
    try:
        assert [s.id for s in _select_fresh("beta")] == ["beta/x"]
    finally:
        locked.chmod(0o700)


def test_a_cache_path_that_is_a_file_changes_nothing(two_suites, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert [s.id for s in _select_fresh("beta")] == ["beta/x"]
    _write_scenario(two_suites / "alpha" / "x.yaml", "alpha", "beta/x")
    with pytest.raises(ScenarioError, match="is also used by"):
        _select_fresh("beta")
