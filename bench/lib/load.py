"""HTTP load: keep-alive clients on raw asyncio streams, bounded in time and requests, checking
every status, and reporting their own CPU (near a full core, they would be the bottleneck)."""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.lib.processes import HOST, BenchError, cpu_seconds


def request(path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    return "\r\n".join(lines + [f"{k}: {v}" for k, v in headers.items()] + ["", ""]).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """One response: its status, headers (names in lower case) and body."""
    lines = (await reader.readuntil(b"\r\n\r\n"))[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines[1:])}
    # daphne gives every answer of Django's a Content-Length (a 304 has no body)
    return status, headers, await reader.readexactly(int(headers.get(b"content-length", 0)))


async def fetch(port: int, raw: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        return await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()


@dataclass
class Round:
    requests: int
    elapsed: float
    client_cpu: float  # share of one core this process used in the round
    server_cpu: float  # share of one core the server used in the round
    latencies: list[float]
    errors: Counter[str | int] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # the first few unexpected answers
    redis_connections: int = 0  # counted by the caller, if it does
    redis_commands: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


Measure = Callable[[float], Awaitable[Round]]  # a round of so many seconds


async def run_round(port: int, raw: bytes, status: int, seconds: float, **load: int) -> Round:
    """``connections`` clients, each sending a request when its previous answer came, until
    ``seconds`` passed or ``limit`` requests were sent; ``server``: its pid."""
    connections, limit, server = load["connections"], load["limit"], load["server"]
    result = Round(0, 0.0, 0.0, 0.0, [])
    clock, sent = time.perf_counter, 0

    async def client(deadline: float) -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection(HOST, port)
        while sent < limit and clock() < deadline:
            sent, began, error = sent + 1, clock(), ""
            try:
                writer.write(raw)
                got, headers, body = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                error, got, headers = f"{type(exc).__name__}: {exc}", type(exc).__name__, {}
                headers[b"connection"] = b"close"
            else:
                result.latencies.append(clock() - began)
                result.requests += 1
                error = f"{got}: {body[:300]!r}" if got != status else ""
            if error:
                result.errors[got] += 1
                if len(result.samples) < 5:
                    result.samples.append(error)
            if headers.get(b"connection", b"").lower() == b"close":
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
        writer.close()

    cpu, server_cpu, start = time.process_time(), cpu_seconds(server), clock()
    async with asyncio.timeout(seconds + 30):  # a hung server cannot hang the benchmark
        await asyncio.gather(*(client(start + seconds) for _ in range(connections)))
    result.elapsed = clock() - start
    result.client_cpu = (time.process_time() - cpu) / result.elapsed
    result.server_cpu = (cpu_seconds(server) - server_cpu) / result.elapsed
    return result


async def interleave(measure: dict[str, Measure], rounds: int, seconds: float, warm: float) -> dict:
    """A warm-up of each, then ``rounds`` rounds of ``seconds`` each, their order rotated."""
    for name, one in measure.items():
        if (r := await one(warm)).errors:
            raise BenchError(f"warm-up of {name}: {dict(r.errors)} {r.samples}")
    results: dict[str, list[Round]] = {name: [] for name in measure}
    for index in range(rounds):
        names = list(measure)[index % len(measure) :] + list(measure)[: index % len(measure)]
        for name in names:
            results[name].append(r := await measure[name](seconds))
            line = f"round {index + 1}/{rounds} {name:<17} {r.rps:8,.0f} req/s  ({r.requests} in"
            line += f" {r.elapsed:.2f} s, server CPU {r.server_cpu:.0%}, client {r.client_cpu:.0%})"
            print(line + (f"  ERRORS {dict(r.errors)} e.g. {r.samples[:2]}" if r.errors else ""))
    return results
