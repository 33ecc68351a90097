"""Loaded by verl on ``import verl`` (entry-point group ``verl.plugins``): registers branchgym's
agent loops with verl's agent-loop registry and its estimators and losses with verl's
algorithm registries."""

from branchgym.integrations.verl import agent_loops, algorithms  # noqa: F401  (registration)
