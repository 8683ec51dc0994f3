"""A real PostgreSQL server in a temporary folder, for the queue's tests and benchmarks/job_queue.py.

Debian's postgresql package (.ci/run installs it), started on a free local port, as the postgres
user when the caller runs as root (PostgreSQL refuses root). No pytest here: the benchmark uses it.
"""

from __future__ import annotations

from pathlib import Path


def pg_bin(name: str) -> str | None:
    import glob
    import shutil

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    def __init__(self, root: Path) -> None:
        import os
        import socket
        import subprocess

        self.root = root
        self.data = root / "pgdata"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            import shutil

            shutil.chown(root, "postgres")
        subprocess.run([*self.as_user, pg_bin("initdb"), "-D", str(self.data), "-U", "impasto", "-A", "trust",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        self.start()
        self.count = 0

    def pg_ctl(self, *args: str) -> None:
        import subprocess

        subprocess.run([*self.as_user, pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args],
                       check=True, capture_output=True)

    def start(self) -> None:
        self.pg_ctl("-o", f"-p {self.port} -k {self.root} -h 127.0.0.1 -F -c max_connections=200",
                    "-l", str(self.root / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://impasto@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self.count += 1
        name = f"t{self.count}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url(name)
