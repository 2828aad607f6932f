"""A private, throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary directory) that a test may restart.

The shared server other tests use is never touched. As root, the cluster runs as the ``postgres`` user
(PostgreSQL refuses to run as root); otherwise as the current user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smartplex_cli.supervisor import free_port


class ClusterUnavailable(RuntimeError):
    """This machine cannot run a private cluster (no binaries, or no user to run them as)."""


def postgres_bindir() -> Path:
    """The newest installed server's bin directory (Debian layout, else ``pg_config --bindir``)."""
    candidates = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        if re.fullmatch(r"\d+", path.parent.name) and (path / "initdb").exists() and (path / "pg_ctl").exists():
            candidates.append(path)
    if candidates:
        return max(candidates, key=lambda p: int(p.parent.name))
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ClusterUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) found")


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterUnavailable("running as root and there is no 'postgres' user to run the server as") from None


@dataclass
class PrivateCluster:
    bindir: Path
    root: Path
    port: int
    user: pwd.struct_passwd | None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> PrivateCluster:
        bindir = postgres_bindir()
        user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="smartplex-pg-"))
        cluster = cls(bindir, root, free_port(), user)
        cluster.log_path.touch()
        if user is not None:  # pg_ctl opens the log itself, as the owner
            os.chown(root, user.pw_uid, user.pw_gid)
            os.chown(cluster.log_path, user.pw_uid, user.pw_gid)
        try:
            cluster._pg(
                "initdb", "-D", str(cluster.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
            )
            settings = {
                "port": str(cluster.port),
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": f"'{root}'",
                "max_connections": "40",
                "shared_buffers": "'32MB'",
            }
            with (cluster.datadir / "postgresql.conf").open("a") as conf:
                conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _pg(self, program: str, *args: str, timeout: float = 120.0) -> None:
        """Run a server program as the cluster's owner; its output goes to the server log, never a pipe
        (the postmaster inherits pg_ctl's descriptors, and a pipe would be held open)."""
        owner = {} if self.user is None else {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                [str(self.bindir / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                timeout=timeout,
                check=False,
                **owner,  # type: ignore[arg-type]
            )
        if result.returncode != 0:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{program} {' '.join(args)} exited with {result.returncode}:\n{tail}")

    def _ctl(self, action: str, *args: str) -> None:
        self._pg("pg_ctl", action, "-D", str(self.datadir), "-l", str(self.log_path), "-w", "-t", "60", *args)

    def start(self) -> None:
        self._ctl("start")

    def restart(self, mode: str = "fast") -> None:
        """Restart; return once the server accepts connections again.

        ``fast`` (what ``pg_ctlcluster restart`` does): sessions are terminated, a checkpoint is written.
        ``immediate``: every process is killed, and the start replays the WAL (a crash, then recovery).
        """
        self._ctl("restart", "-m", mode)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def destroy(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            try:
                self._ctl("stop", "-m", "immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)
