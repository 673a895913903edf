"""An iperf-like probe: throughput, round-trip time and jitter of a link.

Two back ends share one result type:

- :func:`probe_emulated` measures an :class:`~xcloud.net.links.EmulatedLink`
  only through the durations its ``transfer`` reports (simulated time);
- :func:`probe_socket` measures a real TCP connection to a short-lived echo /
  sink server it starts itself on the loopback interface (real time).

Estimators (both back ends)
---------------------------
- RTT: median over ``rounds`` small-message round trips (robust to the rare
  retransmission or scheduler stall).
- Jitter: half-width of the delay spread, ``sqrt(3) * std`` of the small
  message delays, pooled over directions after removing each direction's
  mean, with outliers (beyond twice the interquartile range) trimmed. For
  the emulator's uniform jitter on ``[-J, +J]`` this estimates ``J`` (the
  standard deviation of that distribution is ``J / sqrt(3)``). This is not
  iperf's RFC 3550 smoothed jitter, which would read ``2 J / 3`` there.
- Throughput: ``payload_bytes * 8`` over the mean large-message time minus the
  latency part of it (half the RTT for a one-way emulated transfer, the whole
  RTT for a socket send that waits for the sink's acknowledgement).
"""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

from xcloud.net.links import Direction, EmulatedLink

__all__ = ["ProbeResult", "probe_emulated", "probe_socket"]

_SMALL_BYTES = 64
_HEADER = struct.Struct("!cQ")  # opcode, payload length
_OP_PING = b"P"  # server echoes the payload back
_OP_SINK = b"S"  # server reads the payload and answers one byte
_OP_QUIT = b"Q"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ProbeResult:
    """What a probe measured.

    Attributes
    ----------
    throughput_mbps : float
        Payload throughput in Mbit/s (10**6 bit/s), latency removed.
    rtt_ms : float
        Median round-trip time of a small message, in milliseconds.
    jitter_ms : float
        Half-width of the delay spread, in milliseconds (see module docstring).
    samples : int
        Number of timed messages the estimates rest on.
    """

    throughput_mbps: float
    rtt_ms: float
    jitter_ms: float
    samples: int


def _check_sizes(payload_bytes: int, rounds: int, min_rounds: int) -> None:
    if isinstance(payload_bytes, bool) or not isinstance(payload_bytes, int) or payload_bytes < 1:
        raise ValueError(f"payload_bytes must be a positive integer, got {payload_bytes!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < min_rounds:
        raise ValueError(f"rounds must be an integer >= {min_rounds}, got {rounds!r}")


def _pooled_halfwidth(groups: list[np.ndarray]) -> float:
    """sqrt(3) * pooled standard deviation of groups around their own means, outliers trimmed.

    Samples further than twice the pooled interquartile range from their
    group's median are dropped first: they are retransmissions or scheduler
    stalls, not jitter. For a uniform spread on ``[-J, +J]`` the interquartile
    range is ``J``, so no uniform sample is ever dropped.
    """
    devs = [g - np.median(g) for g in groups]
    pooled = np.concatenate(devs)
    q25, q75 = np.percentile(pooled, [25.0, 75.0])
    bound = 2.0 * float(q75 - q25)
    sq = 0.0
    dof = 0
    for g, d in zip(groups, devs, strict=True):
        kept = g[np.abs(d) <= bound]
        if kept.size > 1:
            sq += float(np.sum((kept - kept.mean()) ** 2))
            dof += kept.size - 1
    return math.sqrt(3.0 * sq / dof) if dof > 0 else 0.0


def probe_emulated(
    link: EmulatedLink, payload_bytes: int = 4_000_000, rounds: int = 200, direction: Direction = "up"
) -> ProbeResult:
    """Measure an emulated link through its transfer times only.

    Sends ``rounds`` small (64-byte) messages each way for RTT and jitter,
    then ``rounds`` messages of ``payload_bytes`` in ``direction`` for
    throughput. Advances the link's simulated clock; never sleeps.

    Parameters
    ----------
    link : EmulatedLink
        The link to measure.
    payload_bytes : int, optional
        Size of each throughput message in bytes. Default 4 MB.
    rounds : int, optional
        Number of small round trips and of large messages; >= 2. Default 200.
    direction : {"up", "down"}, optional
        Direction of the throughput messages. Default "up".

    Returns
    -------
    ProbeResult

    Raises
    ------
    ValueError
        If ``payload_bytes`` or ``rounds`` is out of range.
    """
    _check_sizes(payload_bytes, rounds, 2)
    up = np.array([link.transfer(_SMALL_BYTES, "up") for _ in range(rounds)])
    down = np.array([link.transfer(_SMALL_BYTES, "down") for _ in range(rounds)])
    rtt_s = float(np.median(up + down))
    jitter_s = _pooled_halfwidth([up, down])
    large = np.array([link.transfer(payload_bytes, direction) for _ in range(rounds)])
    wire_s = float(np.mean(large)) - rtt_s / 2.0
    if wire_s <= 0.0:  # payload too small to separate from latency
        wire_s = float(np.mean(large))
    return ProbeResult(
        throughput_mbps=payload_bytes * 8 / wire_s / 1e6,
        rtt_ms=rtt_s * 1e3,
        jitter_ms=jitter_s * 1e3,
        samples=3 * rounds,
    )


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0.0:
            raise TimeoutError(f"socket probe exceeded timeout_s={self.timeout_s}")
        return left


def _recv_exact(sock: socket.socket, n: int, deadline: _Deadline, sink: bytearray | None = None) -> bytes:
    """Read exactly ``n`` bytes (kept only when ``sink`` is None), bounded by the deadline."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        sock.settimeout(deadline.remaining())
        chunk = sock.recv(min(_CHUNK, n - got))
        if not chunk:
            raise ConnectionError(f"peer closed the connection after {got} of {n} bytes")
        got += len(chunk)
        if sink is None:
            parts.append(chunk)
    return b"".join(parts)


def _send_all(sock: socket.socket, data: bytes, deadline: _Deadline) -> None:
    sock.settimeout(deadline.remaining())
    sock.sendall(data)


def _serve(listener: socket.socket, max_messages: int, deadline: _Deadline, errors: list[BaseException]) -> None:
    """Echo / sink server: one connection, at most ``max_messages`` messages, then stop."""
    conn: socket.socket | None = None
    try:
        listener.settimeout(deadline.remaining())
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        discard = bytearray()
        for _ in range(max_messages):
            op, length = _HEADER.unpack(_recv_exact(conn, _HEADER.size, deadline))
            if op == _OP_QUIT:
                return
            if op == _OP_PING:
                _send_all(conn, _recv_exact(conn, length, deadline), deadline)
            elif op == _OP_SINK:
                _recv_exact(conn, length, deadline, sink=discard)
                _send_all(conn, b"A", deadline)
            else:
                raise ValueError(f"probe server: unknown opcode {op!r}")
    except BaseException as exc:  # kept for the caller, which rethrows it
        errors.append(exc)
    finally:
        if conn is not None:
            conn.close()
        listener.close()


def probe_socket(
    host: str = "127.0.0.1", payload_bytes: int = 1 << 20, rounds: int = 20, timeout_s: float = 5.0
) -> ProbeResult:
    """Measure a real TCP connection over loopback against a server it starts itself.

    Starts an echo / sink server thread on an ephemeral port of ``host``,
    connects to it, times ``rounds`` 64-byte echoes (RTT, jitter) and
    ``rounds`` sends of ``payload_bytes`` that wait for a one-byte
    acknowledgement (throughput), then stops the server. Sockets are closed
    and the thread joined on every path, including errors.

    Parameters
    ----------
    host : str, optional
        Must be "127.0.0.1": the probe only ever listens on loopback.
    payload_bytes : int, optional
        Size of each throughput message in bytes. Default 1 MiB.
    rounds : int, optional
        Number of echoes and of throughput messages; >= 2. Default 20.
    timeout_s : float, optional
        Bound on the whole probe, in seconds; > 0. Default 5.

    Returns
    -------
    ProbeResult
        Real-time measurements.

    Raises
    ------
    ValueError
        If ``host`` is not "127.0.0.1" or a size is out of range.
    TimeoutError
        If the probe does not finish within ``timeout_s``.
    ConnectionError
        If the server closes the connection early.
    """
    if host != "127.0.0.1":
        raise ValueError(f"probe_socket only listens on loopback; host must be '127.0.0.1', got {host!r}")
    _check_sizes(payload_bytes, rounds, 2)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ValueError(f"timeout_s must be a positive number, got {timeout_s!r}")
    if not math.isfinite(timeout_s):
        raise ValueError(f"timeout_s must be finite, got {timeout_s!r}")

    deadline = _Deadline(float(timeout_s))
    errors: list[BaseException] = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client: socket.socket | None = None
    thread: threading.Thread | None = None
    try:
        listener.bind((host, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        thread = threading.Thread(
            target=_serve, args=(listener, 2 * rounds + 1, deadline, errors), name="xcloud-probe-server", daemon=True
        )
        thread.start()
        deadline.remaining()
        client = socket.create_connection((host, port), timeout=deadline.remaining())
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        small = bytes(_SMALL_BYTES)
        rtts = np.empty(rounds)
        for i in range(rounds):
            t0 = time.perf_counter()
            _send_all(client, _HEADER.pack(_OP_PING, _SMALL_BYTES) + small, deadline)
            _recv_exact(client, _SMALL_BYTES, deadline)
            rtts[i] = time.perf_counter() - t0

        payload = bytes(payload_bytes)
        header = _HEADER.pack(_OP_SINK, payload_bytes)
        sends = np.empty(rounds)
        for i in range(rounds):
            t0 = time.perf_counter()
            _send_all(client, header, deadline)
            _send_all(client, payload, deadline)
            _recv_exact(client, 1, deadline)
            sends[i] = time.perf_counter() - t0
        _send_all(client, _HEADER.pack(_OP_QUIT, 0), deadline)
    except OSError as exc:
        # Past the deadline, a refused or reset connection is the other side timing out.
        if isinstance(exc, TimeoutError) or time.monotonic() >= deadline.end:
            raise TimeoutError(f"socket probe exceeded timeout_s={timeout_s}") from exc
        raise
    finally:
        if client is not None:
            client.close()
        if thread is not None:
            thread.join(timeout=max(0.0, deadline.end - time.monotonic()) + 1.0)
        else:
            listener.close()
    assert thread is not None  # set whenever the try block completed
    if thread.is_alive():
        raise TimeoutError(f"socket probe server did not stop within timeout_s={timeout_s}")
    if errors:
        raise errors[0]

    rtt_s = float(np.median(rtts))
    wire_s = float(np.mean(sends)) - rtt_s
    if wire_s <= 0.0:  # loopback noise larger than the payload time
        wire_s = float(np.mean(sends))
    return ProbeResult(
        throughput_mbps=payload_bytes * 8 / wire_s / 1e6,
        rtt_ms=rtt_s * 1e3,
        jitter_ms=_pooled_halfwidth([rtts]) * 1e3,
        samples=2 * rounds,
    )
