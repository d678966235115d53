from envs.world.console import Decision, DecisionOption, OperationsConsole
from envs.world.state import AgentLog, Refusal, World

__all__ = ["AgentLog", "Decision", "DecisionOption", "OperationsConsole", "Refusal", "World"]
