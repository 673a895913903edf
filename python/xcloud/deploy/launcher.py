"""Starts and stops a whole Flower federation on one machine: a SuperLink, SuperNodes, and the xcloud app.

For local trials and the end-to-end tests. Everything listens on
``127.0.0.1`` only and speaks TLS with a throwaway CA
(:mod:`xcloud.deploy.certs`); with ``node_auth`` the SuperLink also admits
only SuperNodes whose public keys were registered (``flwr supernode
register``). Every process is started with a time limit, and :meth:`stop`
ends each process it started together with the processes they started
(Flower's SuperExec, ServerApp and ClientApp processes), by process id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from xcloud.deploy.certs import LocalCertificates, make_local_certificates, make_node_auth_key
from xcloud.deploy.config import to_flower_config
from xcloud.fl.config import RunConfig

__all__ = ["LocalFederation", "free_port", "write_app"]

CONNECTION = "xcloud-local"
TEMPLATE = Path(__file__).with_name("template") / "pyproject.toml"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(v: bool | int | float | str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)


def write_app(app_dir: str | Path, config: dict[str, bool | int | float | str]) -> Path:
    """Writes a Flower app directory: the template's project with ``config`` as its run config.

    Flower only lets ``flwr run --run-config`` override keys the app declares,
    so the written app declares every key of ``config``.
    """
    out = Path(app_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.read_text()
    head = text[: text.index("[tool.flwr.app.config]")]
    lines = [head + "[tool.flwr.app.config]"] + [f"{k} = {_toml_value(v)}" for k, v in config.items()]
    (out / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return out


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _signal(pids: list[int], sig: int) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


class LocalFederation:
    """A SuperLink and ``nodes`` SuperNodes on loopback, with TLS.

    Parameters
    ----------
    root : str or Path
        Working directory: certificates, Flower's home, logs, the app, node work dirs.
    nodes : int
        SuperNodes to start (partition ids 0 .. nodes-1).
    node_auth : bool
        Turn on SuperNode authentication: each node gets an EC key pair whose
        public key is registered with the SuperLink before the node starts.
    limit_s : float
        Every process started here is killed after this many seconds at most.
    """

    def __init__(self, root: str | Path, nodes: int, node_auth: bool = False, limit_s: float = 900.0) -> None:
        if nodes < 1:
            raise ValueError("a federation needs at least one SuperNode")
        self.root = Path(root).resolve()
        self.n_nodes, self.node_auth, self.limit_s = nodes, node_auth, limit_s
        self.port = free_port()
        self.certs: LocalCertificates | None = None
        self.superlink: subprocess.Popen[bytes] | None = None
        self.supernodes: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []
        bindir = Path(sys.executable).parent
        self.env = dict(os.environ)
        self.env.update(
            {
                "FLWR_HOME": str(self.root / "flwr-home"),
                "FLWR_TELEMETRY_ENABLED": "0",
                "FLWR_DISABLE_UPDATE_CHECK": "1",
                "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                # How often a SuperExec looks for work (Flower's default: 1 s).
                "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": os.environ.get("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.2"),
            }
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _exe(self, name: str) -> str:
        path = shutil.which(name, path=self.env["PATH"])
        if path is None:
            raise RuntimeError(f"{name} not found: install the deploy extra (pip install 'xcloud[deploy]')")
        return path

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        logf = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(logf)
        cmd = ["timeout", "-s", "KILL", str(int(self.limit_s)), *args]
        return subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=self.env, cwd=self.root)

    def _flwr(self, args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._exe("flwr"), *args], env=self.env, cwd=self.root, capture_output=True, text=True, timeout=timeout
        )

    def start(self, ready_timeout: float = 120.0) -> None:
        """Makes the certificates, starts the SuperLink and the SuperNodes.

        Raises
        ------
        RuntimeError
            If the SuperLink does not accept connections within ``ready_timeout`` seconds.
        """
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.certs = make_local_certificates(self.root / "certs")
        home = self.root / "flwr-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "{self.address}"\nroot-certificates = "{self.certs.ca_cert}"\n'
        )
        args = [
            self._exe("flower-superlink"),
            "--ssl-ca-certfile",
            str(self.certs.ca_cert),
            "--ssl-certfile",
            str(self.certs.server_cert),
            "--ssl-keyfile",
            str(self.certs.server_key),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-runtime-dependency-installation",
        ]
        if self.node_auth:
            args.append("--enable-supernode-auth")
        self.superlink = self._spawn("superlink", args)
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.superlink.poll() is not None:
                raise RuntimeError(f"the SuperLink exited (see {self.root / 'logs' / 'superlink.log'})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the SuperLink did not start listening in time") from None
                time.sleep(0.5)
        for k in range(self.n_nodes):
            self.start_node(k)

    def start_node(self, k: int, extra: dict[str, bool | int | float | str] | None = None) -> None:
        """Starts (or restarts) the SuperNode of partition ``k``; ``extra`` adds node-config entries."""
        assert self.certs is not None, "start() first"
        if k in self.supernodes and self.supernodes[k].poll() is None:
            raise RuntimeError(f"SuperNode {k} is running")
        config = {"partition-id": k, **(extra or {})}
        args = [
            self._exe("flower-supernode"),
            "--superlink",
            self.address,
            "--root-certificates",
            str(self.certs.ca_cert),
            "--node-config",
            " ".join(f"{key}={_toml_value(v)}" for key, v in config.items()),
            "--port",
            str(free_port()),
        ]
        if self.node_auth:
            private, public = make_node_auth_key(self.root / "node-keys", f"node-{k}-{time.time_ns()}")
            res = self._flwr(["supernode", "register", str(public), CONNECTION])
            if res.returncode != 0:
                raise RuntimeError(f"registering SuperNode {k} failed: {res.stdout}{res.stderr}")
            args += ["--auth-supernode-private-key", str(private)]
        self.supernodes[k] = self._spawn(f"supernode-{k}", args)

    def kill_node(self, k: int) -> None:
        """Kills SuperNode ``k`` and everything it started at once (SIGKILL), like a machine that dies."""
        proc = self.supernodes.get(k)
        if proc is None:
            return
        pids = [proc.pid, *_children(proc.pid)]
        _signal(pids, signal.SIGKILL)
        proc.wait(timeout=30)

    def run_app(self, cfg: RunConfig, timeout: float = 600.0, **deploy: bool | int | float | str) -> dict[str, Any]:
        """Runs ``cfg`` as a Flower app on this federation and returns the ServerApp's results.

        Parameters
        ----------
        cfg : RunConfig
        timeout : float
            Seconds to wait for the run to finish.
        **deploy
            Deployment keys (:data:`xcloud.deploy.config.DEPLOY_DEFAULTS`);
            ``work_dir`` and ``metrics_file`` default to directories under ``root``.

        Raises
        ------
        RuntimeError
            If ``flwr run`` fails or the run does not finish in time.
        """
        deploy.setdefault("work_dir", str(self.root / "work"))
        metrics = Path(str(deploy.setdefault("metrics_file", str(self.root / f"metrics-{time.time_ns()}.json"))))
        app = write_app(self.root / "app", to_flower_config(cfg, **deploy))
        res = self._flwr(["run", str(app), CONNECTION])
        if res.returncode != 0 or "Successfully started run" not in res.stdout:
            raise RuntimeError(f"flwr run failed: {res.stdout}{res.stderr}")
        deadline = time.monotonic() + timeout
        while not metrics.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the run did not finish within {timeout:g} s (logs in {self.root / 'logs'})")
            if self.superlink is not None and self.superlink.poll() is not None:
                raise RuntimeError("the SuperLink exited during the run")
            time.sleep(0.5)
        time.sleep(0.2)  # the file is written in one call; let it land
        return dict(json.loads(metrics.read_text()))

    def stop(self) -> None:
        """Ends every process started here and the processes they started (SIGTERM, then SIGKILL)."""
        procs = [p for p in [*self.supernodes.values(), self.superlink] if p is not None]
        pids: list[int] = []
        for p in procs:
            pids += [p.pid, *_children(p.pid)]
        _signal(pids, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        _signal(pids + [c for p in procs for c in _children(p.pid)], signal.SIGKILL)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for f in self._logs:
            f.close()
        self._logs.clear()

    def __enter__(self) -> LocalFederation:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
