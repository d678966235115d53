from envs.world.console import Decision, DecisionOption, OperationsConsole
from envs.world.files import FileEntry, FileSystem, PathEscapeError
from envs.world.state import AgentLog, Refusal, World

__all__ = ["AgentLog", "Decision", "DecisionOption", "FileEntry", "FileSystem", "OperationsConsole", "PathEscapeError",
           "Refusal", "World"]
