"""Errors of the federated layer."""

from __future__ import annotations

__all__ = ["ClientFailure", "NotEnoughClients", "RoundFailed", "UpdateRejected"]


class UpdateRejected(ValueError):
    """A client update that the aggregator refuses (tampered, stale, malformed, NaN, ...).

    ``reason`` is a short machine-readable tag, ``str(e)`` the full explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class RoundFailed(RuntimeError):
    """A round produced no aggregate; the global model is unchanged."""


class NotEnoughClients(RoundFailed):
    """Fewer valid updates than the configured minimum arrived in a round."""


class ClientFailure(RuntimeError):
    """A client failed while producing its update (it is left out of the round)."""
