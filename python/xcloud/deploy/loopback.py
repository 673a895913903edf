"""An in-process transport: the deployed protocol without Flower, for tests and quick checks.

Every node is a ``(node_config, state)`` pair; :meth:`LoopbackTransport.send`
runs the client's handler at once, so a whole deployed run happens in one
process. Faults are switches: a node can be marked ``lost`` (never answers,
like a killed SuperNode), ``slow`` (its answers show only after a number of
polls, like a SuperNode that trains slowly), removed (it left), or its
answers passed through a ``tamper`` hook.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from xcloud.deploy.node import handle
from xcloud.deploy.server import Reply

__all__ = ["LoopbackTransport"]


class LoopbackTransport:
    """Clients as direct calls.

    Parameters
    ----------
    run_config : mapping
        The run config every client sees.
    node_configs : list of mapping
        One node config per node (``partition-id`` at least); node ids are 1, 2, ...
    """

    def __init__(self, run_config: Mapping[str, Any], node_configs: list[Mapping[str, Any]]) -> None:
        self.run_config = dict(run_config)
        self.nodes: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._msg = itertools.count(1)
        self._replies: dict[str, Reply] = {}
        self._hidden: dict[str, int] = {}  # polls a slow node's reply stays invisible
        self.lost: set[int] = set()  # nodes that never answer (but still look connected)
        self.slow: dict[int, int] = {}  # node -> polls each of its replies takes to show
        self.tamper: Callable[[int, str, dict[str, Any]], dict[str, Any]] | None = None
        self.sent: list[tuple[int, str]] = []
        for nc in node_configs:
            self.add_node(nc)

    def add_node(self, node_config: Mapping[str, Any]) -> int:
        """Connects a fresh node (empty state) and returns its id."""
        nid = next(self._ids)
        self.nodes[nid] = (dict(node_config), {})
        return nid

    def remove_node(self, node_id: int) -> None:
        """Disconnects a node: its state is lost, as when a SuperNode process ends."""
        self.nodes.pop(node_id, None)

    def node_ids(self) -> list[int]:
        return sorted(self.nodes)

    def send(self, node_id: int, kind: str, payload: dict[str, Any], group: str) -> str:
        mid = f"m{next(self._msg)}"
        self.sent.append((node_id, kind))
        if node_id in self.lost or node_id not in self.nodes:
            return mid
        node_config, state = self.nodes[node_id]
        try:
            out = handle(kind, dict(payload), state, self.run_config, node_config)
            if self.tamper is not None:
                out = self.tamper(node_id, kind, out)
            self._replies[mid] = Reply(node_id, out)
        except Exception as e:  # noqa: BLE001 - Flower turns a failing handler into an error reply, as here
            self._replies[mid] = Reply(node_id, None, f"{type(e).__name__}: {e}")
        if self.slow.get(node_id, 0) > 0:
            self._hidden[mid] = self.slow[node_id]
        return mid

    def poll(self, message_ids: list[str]) -> dict[str, Reply]:
        out: dict[str, Reply] = {}
        for mid in message_ids:
            if self._hidden.get(mid, 0) > 0:
                self._hidden[mid] -= 1
                if self._hidden[mid] > 0:
                    continue
            if mid in self._replies:
                out[mid] = self._replies.pop(mid)
        return out
