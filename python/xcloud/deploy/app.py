"""xcloud as a Flower app: the ServerApp and ClientApp that ``flwr run`` starts.

Components for ``[tool.flwr.app.components]``: ``xcloud.deploy.app:server_app``
and ``xcloud.deploy.app:client_app`` (the template in
``xcloud/deploy/template/pyproject.toml`` names them). Every xcloud message
is one ``ConfigRecord`` named ``xcloud`` inside Flower's ``RecordDict``;
updates and aggregates travel in it as xcloud's own authenticated envelopes
(HMAC-SHA256 / Ed25519) around the compact ciphertext wire format, so Flower
carries bytes it cannot read, over TLS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from xcloud.deploy.node import handle

if TYPE_CHECKING:
    from xcloud.deploy.server import DeployRound, Reply

# The server side (xcloud.deploy.server, which imports torch) is imported only
# in the ServerApp: Flower starts a fresh ClientApp process for every message,
# and the messages that do not train (hello, keygen, release) need no torch.

__all__ = ["FlowerTransport", "MESSAGE_TYPES", "client_app", "server_app"]

RECORD = "xcloud"
MESSAGE_TYPES = {
    "hello": "query.hello",
    "keygen": "query.keygen",
    "release": "query.release",
    "handover": "query.handover",
    "train": "train",
    "evaluate": "evaluate",
}
_KINDS = {v: k for k, v in MESSAGE_TYPES.items()}

log = logging.getLogger("xcloud.deploy")


class FlowerTransport:
    """The server's :class:`~xcloud.deploy.server.Transport` over a Flower ``Grid``."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def node_ids(self) -> list[int]:
        return sorted(int(n) for n in self.grid.get_node_ids())

    def send(self, node_id: int, kind: str, payload: dict[str, Any], group: str) -> str:
        msg = self.grid.create_message(RecordDict({RECORD: ConfigRecord(payload)}), MESSAGE_TYPES[kind], node_id, group)
        (mid,) = list(self.grid.push_messages([msg]))
        return str(mid)

    def poll(self, message_ids: list[str]) -> dict[str, Reply]:
        from xcloud.deploy.server import Reply

        out: dict[str, Reply] = {}
        for reply in self.grid.pull_messages(message_ids):
            meta = reply.metadata
            if reply.has_error():
                out[meta.reply_to_message_id] = Reply(meta.src_node_id, None, str(reply.error.reason))
            elif RECORD not in reply.content:  # not an xcloud node's answer: a failure of that node only
                out[meta.reply_to_message_id] = Reply(meta.src_node_id, None, f"reply has no {RECORD!r} record")
            else:
                out[meta.reply_to_message_id] = Reply(meta.src_node_id, dict(reply.content[RECORD]))
        return out


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """The ServerApp: runs :class:`~xcloud.deploy.server.DeployServer` over the grid and writes the metrics file."""
    from xcloud.deploy.server import DeployServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def show(row: DeployRound) -> None:
        log.info(
            "round %d: %d accepted %s (staleness %s), left out %s, %.2f s",
            row.round,
            len(row.accepted),
            row.accepted,
            row.staleness,
            row.dropped or "none",
            row.round_s,
        )

    t0 = time.perf_counter()
    result = DeployServer(FlowerTransport(grid), dict(context.run_config)).run_all(on_round=show)
    log.info("run finished in %.1f s: %s", time.perf_counter() - t0, result["final"])


client_app = ClientApp()


def _client_handler(kind: str) -> Callable[[Message, Context], Message]:
    def fn(msg: Message, context: Context) -> Message:
        state = dict(context.state[RECORD]) if RECORD in context.state else {}
        out = handle(kind, dict(msg.content[RECORD]), state, dict(context.run_config), dict(context.node_config))
        context.state[RECORD] = ConfigRecord(state)
        return Message(RecordDict({RECORD: ConfigRecord(out)}), reply_to=msg)

    fn.__name__ = f"xcloud_{kind}"
    return fn


client_app.query("hello")(_client_handler("hello"))
client_app.query("keygen")(_client_handler("keygen"))
client_app.query("release")(_client_handler("release"))
client_app.query("handover")(_client_handler("handover"))
client_app.train()(_client_handler("train"))
client_app.evaluate()(_client_handler("evaluate"))
