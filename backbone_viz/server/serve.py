"""``python -m backbone_viz serve``: the web app for a whole class, on one machine or several replicas.

One replica is one ``streamlit run app.py`` process, started through :mod:`webui.shell.launch` so that it
loads the bundled backbone and analyses the sample gallery before it answers its health check (a warm
start). The replicas listen on loopback ports and an nginx (Debian's ``nginx`` package, configured by
:mod:`backbone_viz.server.nginx`) in front of them listens on ``--address:--port``, for one replica too:

* Streamlit's browser files (``/static/``) served by nginx, compressed ahead of time, so that a new
  browser costs the replicas no CPU for them and the class's network 1.7 MB instead of 4.5 MB; the
  pictures every session shows (``/media/``, named by their bytes' hash) kept and sent by nginx;
* websocket upgrade for Streamlit's ``/_stcore/stream``;
* session affinity by a cookie (``bv_replica``), not by client address, because a class often sits
  behind ONE address (a school's NAT), and Streamlit's media and upload requests must reach the replica
  that holds the session; a new visitor's cookie is nginx's ``$request_id``, hashed onto the replicas;
* the 20 MB upload cap, nginx's passive health checks (a replica that fails is skipped for a few
  seconds), and ``X-Backbone-Viz-Replica`` on every answer, telling which replica served it;
* every replica shares one ``server.cookieSecret`` (Streamlit's upload protection then accepts a
  session that had to move to another replica) and this machine's torch cache (each weights file is
  downloaded once, under the lock of :mod:`backbone_viz.files.weights`).

Without nginx, one replica listens on ``--address:--port`` itself (several replicas need nginx).

This process watches the replicas: one that dies is reported on the terminal (the others go on, and
nginx sends its sessions to them). Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from backbone_viz.core.device import DEVICE_ENV, DEVICE_HELP
from backbone_viz.errors import BackboneVizError
from backbone_viz.files.shipped import app_root
from backbone_viz.server.nginx import find_nginx, nginx_config, prepare_static

#: Seconds a replica may take to start (imports, model load, gallery) before serve gives up.
START_TIMEOUT_S = 180.0
#: Seconds between two looks at the replicas.
WATCH_S = 2.0


class ServeError(BackboneVizError):
    """The class server could not start: no nginx, a port in use, a replica that would not start."""


@dataclass
class Replica:
    """One ``streamlit run app.py`` process."""

    index: int
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    host: str = "127.0.0.1"
    reported: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DEVICE_PROBE = """
import sys
from backbone_viz.core.device import describe_device, resolve_device
from backbone_viz.errors import BackboneVizError
try:
    print(describe_device(resolve_device(sys.argv[1] or None)))
except BackboneVizError as error:
    print(error.message, error.hint, sep="\\n", file=sys.stderr)
    sys.exit(3)
"""


def check_device(device: str | None) -> str:
    """Where the replicas' models will run (``"the CPU"``, ``"GPU 0 (NVIDIA H200)"``).

    Asked of a short-lived Python process, so that this supervisor, which runs for the whole class,
    never holds torch's memory itself.

    Raises:
        ServeError: the device is not there (the message says why and what to choose instead).
    """
    # The folder this package was imported from, so that the probe imports the same backbone_viz.
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", _DEVICE_PROBE, device or ""],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )
    if done.returncode == 3:
        message, _, hint = done.stderr.strip().partition("\n")
        raise ServeError(message, hint)
    if done.returncode != 0:
        raise ServeError(
            f"Python could not check the device: {done.stderr.strip()[-300:]}",
            "Check that backbone-viz and torch are installed in this Python.",
        )
    return done.stdout.strip()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def start_replica(
    index: int,
    *,
    address: str,
    port: int,
    cookie_secret: str,
    folder: Path,
    warm: bool = True,
    device: str | None = None,
) -> Replica:
    """Starts one replica (not waiting for it); its output goes to ``folder/replica-<index>.log``.

    Args:
        device: where its models run (``cpu``, ``cuda``...), passed as ``BACKBONE_VIZ_DEVICE``; None
            keeps this process's environment.
    """
    root = app_root()  # a checkout's top, or the copy an install put inside the package
    app = root / "app.py"
    start = ["-m", "webui.shell.launch"] if warm else ["-m", "streamlit"]
    command = [
        sys.executable, *start, "run", str(app),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
    ]  # fmt: skip
    # Streamlit takes the cookie secret only from its config or the environment, not the command line.
    env = {**os.environ, "STREAMLIT_SERVER_COOKIE_SECRET": cookie_secret}
    if device is not None:
        env[DEVICE_ENV] = device
    log = folder / f"replica-{index}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    # A server on every network (0.0.0.0) answers on loopback too.
    host = "127.0.0.1" if address in ("0.0.0.0", "127.0.0.1", "localhost") else address
    return Replica(index, port, process, log, host)


def wait_healthy(replicas: list[Replica], timeout: float = START_TIMEOUT_S) -> None:
    """Waits until every replica answers its health check.

    Raises:
        ServeError: a replica exited or did not answer in time (the end of its log is quoted).
    """
    deadline = time.monotonic() + timeout
    pending = list(replicas)
    while pending:
        for replica in list(pending):
            if replica.process.poll() is not None:
                raise ServeError(
                    f"Replica {replica.index} stopped while starting (exit code {replica.process.returncode}):"
                    f" {_tail(replica.log)}",
                    "Read its log for the cause; a port in use is the most common one.",
                )
            if _healthy(replica.url):
                pending.remove(replica)
        if pending and time.monotonic() > deadline:
            raise ServeError(
                f"Replica {pending[0].index} did not start within {timeout:.0f} s: {_tail(pending[0].log)}",
                "Read its log; a slow machine may need fewer replicas.",
            )
        time.sleep(0.2)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """Asks every process to stop (SIGTERM), then kills those still running after ``timeout``."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(args: argparse.Namespace, *, out=None) -> int:
    """Runs the class server until Ctrl-C or SIGTERM; returns the exit code."""
    out = out or sys.stdout
    if args.replicas < 1:
        raise ServeError("--replicas must be at least 1.", "Use --replicas 1 for one server.")
    device = getattr(args, "device", None)
    where = check_device(device)  # a device that is not there stops serve at once
    nginx = find_nginx(args.nginx)
    if nginx is None and args.replicas > 1:
        raise ServeError(
            "Several replicas need nginx in front of them, and nginx is not installed on this computer.",
            "Install it (Debian/Ubuntu: sudo apt-get install nginx), or run one replica: --replicas 1.",
        )
    stopping = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with tempfile.TemporaryDirectory(prefix="backbone-viz-serve-") as tmp_name:
        tmp = Path(tmp_name)
        secret = secrets.token_hex(16)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            if nginx is None:
                print(
                    "backbone-viz: nginx is not installed, so the app sends its own browser files: each new "
                    "browser costs the server about 0.25 CPU-seconds more and downloads 4.5 MB instead of "
                    "1.7 MB. For a class, install nginx (Debian/Ubuntu: sudo apt-get install nginx).",
                    file=out,
                    flush=True,
                )
                replicas = [
                    start_replica(
                        1, address=args.address, port=args.port, cookie_secret=secret, folder=tmp, device=device
                    )
                ]
            else:
                ports = [free_port() for _ in range(args.replicas)]
                replicas = [
                    start_replica(
                        i + 1, address="127.0.0.1", port=p, cookie_secret=secret, folder=tmp, device=device
                    )
                    for i, p in enumerate(ports)
                ]
            processes += [r.process for r in replicas]
            print(
                f"backbone-viz: starting {args.replicas} replica(s) (warm start: model and gallery); "
                f"the models run on {where}…",
                file=out,
                flush=True,
            )
            if nginx is not None:
                prepare_static(tmp / "www")  # about a second, while the replicas warm up
            wait_healthy(replicas)
            if nginx is not None:
                # nginx started by root runs its workers as an unprivileged user: they must reach the
                # folder (not read it) and write their temporary files in its subfolders.
                tmp.chmod(0o711)
                for name in ("client-body", "proxy", "fastcgi", "uwsgi", "scgi", "media-cache"):
                    (tmp / name).mkdir(mode=0o777, exist_ok=True)
                    (tmp / name).chmod(0o777)
                conf = tmp / "nginx.conf"
                conf.write_text(
                    nginx_config(
                        address=args.address,
                        port=args.port,
                        replica_ports=[r.port for r in replicas],
                        tmp=tmp,
                        www=tmp / "www",
                    )
                )
                proxy = subprocess.Popen(
                    [nginx, "-c", str(conf), "-p", str(tmp)],
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp / "nginx-start.log", "wb"),  # noqa: SIM115 - closed with the folder
                )
                processes.append(proxy)
                time.sleep(0.5)
                if proxy.poll() is not None:
                    raise ServeError(
                        f"nginx could not start on {args.address}:{args.port}: "
                        f"{_tail(tmp / 'nginx-start.log')} {_tail(tmp / 'nginx-error.log')}",
                        "Another program may use that port: pick another with --port.",
                    )
            for replica in replicas:
                print(
                    f"backbone-viz: replica {replica.index} on {replica.url} (pid {replica.process.pid})",
                    file=out,
                    flush=True,
                )
            shown = "localhost" if args.address in ("0.0.0.0", "127.0.0.1") else args.address
            print(
                f"backbone-viz is ready: http://{shown}:{args.port} ({args.replicas} replica(s)). "
                "Ctrl-C stops it.",
                file=out,
                flush=True,
            )
            while not stopping["now"]:
                for replica in replicas:
                    if replica.process.poll() is not None and not replica.reported:
                        replica.reported = True
                        alive = sum(r.process.poll() is None for r in replicas)
                        print(
                            f"backbone-viz: replica {replica.index} stopped (exit code {replica.process.returncode}); "
                            f"{alive} of {len(replicas)} still serving. Its log: {_tail(replica.log)}",
                            file=out,
                            flush=True,
                        )
                if nginx is not None and processes[-1].poll() is not None:
                    print("backbone-viz: nginx stopped; stopping the replicas.", file=out, flush=True)
                    return 1
                if all(r.process.poll() is not None for r in replicas):
                    print("backbone-viz: every replica has stopped.", file=out, flush=True)
                    return 1
                time.sleep(WATCH_S)
            print("backbone-viz: stopping…", file=out, flush=True)
            return 0
        finally:
            stop(processes[::-1])


def add_serve_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``serve`` command to a subparsers object."""
    parser = subparsers.add_parser(
        "serve",
        help="run the web app for a class: a warm start, nginx in front, optionally several replicas",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="streamlit processes (default 1); nginx goes in front when installed (2+ need it)",
    )
    parser.add_argument("--port", type=int, default=8501, help="the port students open (default 8501)")
    parser.add_argument(
        "--address",
        default="0.0.0.0",
        help="where to listen (default 0.0.0.0: every network of this computer)",
    )
    parser.add_argument("--nginx", default=None, help="the nginx program (default: nginx on the PATH)")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.set_defaults(func=serve)
