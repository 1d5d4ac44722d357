"""What every bench script needs: a scratch PostgreSQL database, a free port, a server that is up."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx


@dataclass(frozen=True)
class ScratchDatabase:
    """`bench_<random>` beside the admin database; created on `create()`, dropped on `drop()`."""

    admin_dsn: str
    name: str

    @classmethod
    def beside(cls, admin_dsn: str) -> ScratchDatabase:
        return cls(admin_dsn, "bench_" + secrets.token_hex(4))

    @property
    def dsn(self) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + self.name

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    def create(self) -> None:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    """Until `refuge serve` answers its login page; stop at once if the process died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("refuge serve exited early")
        try:
            if httpx.get(url + "/login", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("refuge serve did not start")


@contextlib.contextmanager
def refuge_server(env: dict[str, str], port: int) -> Iterator[str]:
    """`refuge serve` of this checkout on `port`, up; its URL. Stopped on exit (SIGINT, killed after 10 s)."""
    root = Path(__file__).resolve().parent.parent
    # PYTHONPATH: serve this checkout, whatever the venv was installed from.
    server = subprocess.Popen(
        [str(root / ".venv" / "bin" / "refuge"), "serve", "--port", str(port)],
        env={**env, "PYTHONPATH": str(root)},
        cwd=root,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(base_url, server)
        yield base_url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
