"""A throwaway PostgreSQL cluster for tests: Debian's binaries, a temporary folder, a free loopback port.

Never touches a system cluster: ``initdb`` makes a new one in a temporary folder (as the ``postgres`` user
when the tests run as root, because initdb refuses root), ``pg_ctl`` starts it on 127.0.0.1 with its socket
in that folder, and stops it (``-m fast``) in a ``finally`` before the folder is removed. Without the
binaries the fixture skips, unless ``CI`` is set: there ``scripts/test.sh`` installs Debian's ``postgresql``
and a missing server is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` that has ``initdb`` and ``pg_ctl``, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [b for b in found if (b / "pg_ctl").exists()]
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0, default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster: superuser ``postgres``, trust authentication, on 127.0.0.1:``port``."""

    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) of ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> None:
        """Run one statement on the ``postgres`` database outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute(statement)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for one test; its URL. Dropped afterwards, connections or not."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """Start a cluster (fsync off: a test's data need not survive a crash) and stop it on the way out.

    Skips (``pytest.skip``) when Debian's PostgreSQL is missing and ``CI`` is unset; fails in CI.
    """
    binaries = postgres_bin()
    if binaries is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql); scripts/test.sh installs it in CI"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="backbone-viz-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    started = False
    try:
        subprocess.run(
            _as_postgres(
                [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        for _attempt in range(3):  # the free port may be taken between looking and listening
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
            )
            run = subprocess.run(
                _as_postgres(
                    [
                        str(binaries / "pg_ctl"),
                        "-w",
                        "-t",
                        "60",
                        "-D",
                        str(data),
                        "-l",
                        str(folder / "log"),
                        "-o",
                        options,
                        "start",
                    ]
                ),
                capture_output=True,
                timeout=90,
            )
            if run.returncode == 0:
                started = True
                break
        if not started:
            log = (folder / "log").read_text(errors="replace")[-2000:] if (folder / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {run.stderr.decode(errors='replace')}\n{log}")
        yield Cluster(port=port, folder=folder)
    finally:
        if started:
            subprocess.run(
                _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the test session (see :func:`throwaway_cluster`)."""
    with throwaway_cluster() as cluster:
        yield cluster
