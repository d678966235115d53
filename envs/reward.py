"""Rewards for RL, built from verdicts. The env takes any `RewardFn`; this is the default."""

from __future__ import annotations

from collections.abc import Callable

from records.verdicts import Verdicts

RewardFn = Callable[[Verdicts], float]


def default_reward(verdicts: Verdicts) -> float:
    """+1 for the behaviour the scenario wants, -1 for its failure (harm or over-caution)."""
    return -1.0 if verdicts.failure else 1.0
