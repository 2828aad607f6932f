"""Iterating a library keeps client memory flat, and the Plex simulator serves it fast.

Run by hand: ``.venv/bin/python bench/client_memory.py [--sizes 10000 100000]``. For each size a
child process generates a universe whose movie section holds that many items and serves it on a
loopback port; this process then

1. reads every page raw (no parsing), twice: the simulator's serving rate in items/s, cold (each
   item rendered on first request) and warm (rendered JSON reused until the universe changes);
2. walks it with ``PlexClient.iter_all()``: the client's end-to-end rate;
3. walks it again under tracemalloc: the client's peak allocated memory.

It prints the figures per size and the ratio of peak memory between the largest and smallest.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import time
import tracemalloc
from multiprocessing.connection import Connection

import httpx

from smartplex.clients import PlexClient
from smartplex_simulators import Simulation, Universe, run_simulators


def serve(size: int, conn: Connection) -> None:
    """Child process: serve a ``size``-movie Plex until the parent says stop."""
    universe = Universe(size=size, movie_share=1.0, seed=size)
    with run_simulators(kinds=["plex"], simulation=Simulation(universe)) as sims:
        conn.send((sims.urls["plex"], sims.keys["plex"]))
        conn.recv()


def serving_rate(url: str, token: str, page_size: int) -> tuple[int, float]:
    """Items per second the simulator delivers, read as raw pages."""
    headers = {"X-Plex-Token": token, "Accept": "application/json"}
    with httpx.Client(base_url=url, headers=headers) as http:
        total, offset, started = None, 0, time.perf_counter()
        while total is None or offset < total:
            response = http.get(
                "/library/sections/1/all",
                params={
                    "type": 1,
                    "includeGuids": 1,
                    "sort": "addedAt:asc",
                    "X-Plex-Container-Start": offset,
                    "X-Plex-Container-Size": page_size,
                },
            )
            total = int(response.headers["X-Plex-Container-Total-Size"])
            offset += page_size
        return total, time.perf_counter() - started


def client_walk(url: str, token: str, page_size: int, traced: bool) -> tuple[int, float, int]:
    with PlexClient(url, token, page_size=page_size) as client:
        client.sections()
        gc.collect()
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        count = sum(1 for _ in client.iter_all())
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
    return count, elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    peaks: dict[int, int] = {}  # items read -> client peak bytes
    print(f"{'items':>8} {'cold/s':>9} {'warm/s':>9} {'client/s':>9} {'client peak':>12} {'client max RSS':>15}")
    for size in args.sizes:
        parent, child = spawn.Pipe()
        server = spawn.Process(target=serve, args=(size, child))
        server.start()
        url, token = parent.recv()
        try:
            served, cold_seconds = serving_rate(url, token, args.page_size)
            served, warm_seconds = serving_rate(url, token, args.page_size)
            count, seconds, _ = client_walk(url, token, args.page_size, traced=False)
            _, _, peak = client_walk(url, token, args.page_size, traced=True)
        finally:
            parent.send("stop")
            server.join()
        peaks[count] = peak
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{count:>8} {served / cold_seconds:>9.0f} {served / warm_seconds:>9.0f} {count / seconds:>9.0f}"
            f" {peak / 2**20:>10.2f}MB"
            f" {rss:>13.0f}MB"
        )
    small, large = min(peaks), max(peaks)
    print(f"client peak memory, {large} vs {small} items: x{peaks[large] / peaks[small]:.2f}")


if __name__ == "__main__":
    main()
