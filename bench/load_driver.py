"""The lab's open-loop driver against Locust, the peer tool, on the same slow server.

A server that answers every request after DELAY seconds stands for a database that has
slowed down. The target is 20 requests per second for 20 s. An open-loop driver keeps
sending 20/s and the in-flight count grows (what an incident looks like); Locust's pacing
(`constant_throughput`, per user, closed loop) waits for each answer, so its rate falls to
users / DELAY. Also printed: CPU seconds and peak RSS of each, on this machine.

Usage: python bench/load_driver.py [--locust PATH] [--delay SECONDS]
(Locust is not a dependency: install it in any virtualenv and pass its `locust` script.)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pgslots.lab.load import Driver
from pgslots.lab.scenarios import LoadPlan, Stage

RATE = 20.0
SECONDS = 20.0

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    async def handle(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        await asyncio.sleep(float(sys.argv[2]))
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
        await writer.drain()
        writer.close()
    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
        async with server:
            await server.serve_forever()
    asyncio.run(main())
    """
)

LOCUSTFILE = textwrap.dedent(
    f"""
    from locust import FastHttpUser, constant_throughput, task
    class Visitor(FastHttpUser):
        wait_time = constant_throughput(1)  # {int(RATE)} users x 1/s = the same target rate
        @task
        def items(self):
            self.client.get("/items/", headers={{"Connection": "close"}})
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(workdir: Path, delay: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (workdir / "server.py").write_text(SERVER)
    server = subprocess.Popen([sys.executable, str(workdir / "server.py"), str(port), str(delay)])
    time.sleep(0.5)
    return server, port


def run_driver(port: int) -> str:
    before = resource.getrusage(resource.RUSAGE_SELF)
    driver = Driver(
        LoadPlan(stages=(Stage(SECONDS, RATE, 0.0),), request_timeout=30),
        host="127.0.0.1",
        port=port,
        path="/items/",
        session_cookies=["s=1"],
        publish_task=None,
        out=io.StringIO(),
    )
    asyncio.run(driver.run())
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    sent = sum(1 for o in driver.outcomes if o.kind == "web")
    return (
        f"pgslots driver: {sent / SECONDS:5.1f} req/s sent, peak {driver.peak_in_flight} in flight, "
        f"CPU {cpu:.2f} s, peak RSS {after.ru_maxrss / 1024:.0f} MiB (whole process)"
    )


def run_locust(locust: str, port: int, workdir: Path) -> str:
    (workdir / "locustfile.py").write_text(LOCUSTFILE)
    process = subprocess.Popen(
        [
            locust,
            "-f",
            str(workdir / "locustfile.py"),
            "--headless",
            "-u",
            str(int(RATE)),
            "-r",
            str(int(RATE)),
            "-t",
            f"{int(SECONDS)}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--only-summary",
            "--csv",
            str(workdir / "l"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, _status, usage = os.wait4(process.pid, 0)
    stats = (workdir / "l_stats.csv").read_text().splitlines()
    total = next(line for line in stats if ",Aggregated," in line).split(",")
    requests = int(total[2])
    return (
        f"locust:         {requests / SECONDS:5.1f} req/s sent, "
        f"CPU {usage.ru_utime + usage.ru_stime:.2f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--locust", default=shutil.which("locust"))
    parser.add_argument("--delay", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(
            f"target {RATE:.0f} req/s for {SECONDS:.0f} s; the server answers after {args.delay} s"
        )
        for label, run in (("driver", lambda port: run_driver(port)), ("locust", None)):
            if label == "locust" and not args.locust:
                print("locust: not installed (pass --locust PATH to compare)")
                continue
            server, port = serve(workdir, args.delay)
            try:
                print(run(port) if run else run_locust(args.locust, port, workdir))
            finally:
                server.terminate()
                server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
