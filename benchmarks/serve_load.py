"""Load on `impasto serve`: many clients submit small jobs at once; the queue drains; the page answers.

    python benchmarks/serve_load.py [--clients 24] [--rounds 2]

Starts a real server (web process + worker process) on localhost with an empty data folder. Each
round, CLIENTS threads submit one job each at the same instant (two thirds with the shipped fast
model at 256 px, one third optimized at 96 px), while a prober loads the page and the job list
every 0.25 s and a sampler reads the resident memory of the server and its worker. A last round
submits more jobs than the queue takes, to show the 429s. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import EXAMPLES, ROOT

sys.path.insert(0, str(ROOT))
from tests.serve.server import Server

PHOTO = (EXAMPLES / "lighthouse.jpg").read_bytes()


def job_fields(i: int) -> dict[str, str]:
    if i % 3 == 2:
        return {"style": "starry_night", "size": "96", "scales": "1", "iterations": "20"}
    return {"method": "multistyle6", "style": ["the_scream", "starry_night", "wave_crop"][i % 3], "size": "256"}


def submit_all(url: str, n: int) -> list[tuple[int, float, str | None]]:
    """n clients at once: (status code, seconds, job id)."""
    barrier = threading.Barrier(n)
    out: list[tuple[int, float, str | None]] = [(0, 0.0, None)] * n

    def client(i: int) -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            t0 = time.perf_counter()
            r = http.post(url + "/api/jobs", data=job_fields(i), files={"content": ("p.jpg", PHOTO, "image/jpeg")})
            out[i] = (r.status_code, time.perf_counter() - t0, r.json().get("id") if r.status_code == 202 else None)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


class Probe(threading.Thread):
    """Page and job-list latency, and resident memory of the server and its worker, until stopped."""

    def __init__(self, url: str, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil  # the bench extra: only when measuring
        self.url, self.proc = url, psutil.Process(pid)
        self.page: list[float] = []
        self.api: list[float] = []
        self.rss: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                for path, into in (("/", self.page), ("/api/jobs?limit=24", self.api)):
                    t0 = time.perf_counter()
                    http.get(self.url + path).raise_for_status()
                    into.append(time.perf_counter() - t0)
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.rss.append(sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20)
                self.stop.wait(0.25)


def drain(url: str, ids: list[str], timeout: float = 900) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < deadline:
            status = {i: http.get(f"{url}/api/jobs/{i}").json()["status"] for i in ids}
            if all(s not in ("queued", "running") for s in status.values()):
                return status
            time.sleep(0.5)
    raise TimeoutError("the queue did not drain")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp) / "data") as server:
        import psutil  # the bench extra: only when measuring
        server_rss = psutil.Process(server.proc.pid)
        idle = sum(p.memory_info().rss for p in [server_rss, *server_rss.children(recursive=True)]) / 2**20
        for round_ in range(1, args.rounds + 2):
            overload = round_ == args.rounds + 1
            n = 80 if overload else args.clients  # the queue takes 64 (impasto serve --max-queue)
            probe = Probe(server.url, server.proc.pid)
            probe.start()
            t0 = time.perf_counter()
            submitted = submit_all(server.url, n)
            ids = [i for code, _, i in submitted if i]
            status = drain(server.url, ids)
            elapsed = time.perf_counter() - t0
            probe.stop.set()
            probe.join()
            codes = [code for code, _, _ in submitted]
            rows.append({
                "round": f"{round_}{' (overload)' if overload else ''}",
                "clients": n,
                "accepted (202)": codes.count(202),
                "refused (429)": codes.count(429),
                "other": len(codes) - codes.count(202) - codes.count(429),
                "done": sum(s == "done" for s in status.values()),
                "submit p50 / max ms": f"{1000 * pct([t for _, t, _ in submitted], 50):.0f} / "
                                       f"{1000 * max(t for _, t, _ in submitted):.0f}",
                "drained in s": f"{elapsed:.1f}",
                "page p50 / p95 / max ms": f"{1000 * pct(probe.page, 50):.0f} / {1000 * pct(probe.page, 95):.0f} / "
                                           f"{1000 * max(probe.page):.0f}",
                "job list p95 ms": f"{1000 * pct(probe.api, 95):.0f}",
                "RSS peak MiB": f"{max(probe.rss):.0f}",
                "RSS after MiB": f"{probe.rss[-1]:.0f}",
            })
            print(f"round {round_}: {rows[-1]}", file=sys.stderr)
    print(f"\nidle server + worker before any job: {idle:.0f} MiB resident\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
