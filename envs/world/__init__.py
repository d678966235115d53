from envs.world.app import APPS, App, EpisodeStart, app_named, placeholder_tokens, register_app
from envs.world.console import Decision, DecisionOption, OperationsConsole
from envs.world.files import FileEntry, FileSystem, PathEscapeError, ReadOnlyFileError
from envs.world.state import AgentLog, Refusal, World

__all__ = ["APPS", "AgentLog", "App", "Decision", "DecisionOption", "EpisodeStart", "FileEntry", "FileSystem",
           "OperationsConsole", "PathEscapeError", "ReadOnlyFileError", "Refusal", "World", "app_named",
           "placeholder_tokens", "register_app"]
