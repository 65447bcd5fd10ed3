"""The chaos test (issue 12): three servers, three sender processes and sixty clients on real
PostgreSQL and Redis, while faults are injected; then nothing may be lost and nobody locked out.
It runs once with three daphnes and once with three uvicorns (``[daphne]``, ``[uvicorn]``).

The servers run ``tests.chaos.asgi`` (a consumer that raises on purpose while faults are on) with
``tests.chaos.settings`` (small BACKLOG_LIMIT and margin); the channel layer and the cache each
have a private redis-server. Senders (``tests.chaos.sender``) call ``notify()`` in loops. Each
client (``tests.chaos.client``) follows the contract: resume after hello, page, reconnect with
backoff to a server chosen at random, drop duplicates by id. Faults, on a schedule drawn from
the seed: bursts of three times BACKLOG_LIMIT to one user (in one transaction and in many),
``cache.clear()``, ``CLIENT KILL TYPE pubsub`` on the layer's Redis, one server killed with
SIGKILL and started again, a sender killed right after a COMMIT, exceptions in the consumers'
handlers, hostile frames. Then the faults stop, everything settles (bounded), and:

- every client holds exactly the notifications the database holds for its user, each once;
- every user can open MAX_SOCKETS_PER_USER sockets at once, each greeted with ``hello``;
- the server closed sockets only with documented codes.

Environment: ``CHAOS_SEED`` (repeat a run's choices), ``CHAOS_FAULTS`` (``all``, ``none`` or a
comma list of the fault names below), ``CHAOS_SECONDS`` (length of the fault phase).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from notifications.models import Notification
from tests.chaos.client import ContractClient
from tests.chaos.processes import FaultLog, SenderProcess, ShowChaosLogsOnFailure
from tests.chaos.report import describe_failures, diff_client, figures, summary
from tests.chaos.settings import CHAOS_NOTIFICATIONS
from tests.conftest import service_missing
from tests.servers import ROOT, SERVERS, Server, database_url
from tests.sockets import session_of
from tests.test_faults import RedisServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_sync_thread_connection"),
]

USERS = 20
CLIENTS_PER_USER = 3
HOSTILE_USERS = 6  # the last client of each of these users sends hostile frames
SERVER_PROCESSES = 3
SENDERS = 3
WARM_UP_SECONDS = 3
FAULT_SECONDS = float(os.environ.get("CHAOS_SECONDS", "25"))
SETTLE_SECONDS = 15  # gap checks (2 s), backoffs (3 s at most) and paging fit well within
CONNECT_CHECK_SECONDS = 10  # sockets just closed, or of a killed server, may count a moment
START_TIMEOUT = 60  # a loaded 2-core machine, under coverage, starts a server slowly
RAISE_PROBABILITY = "0.01"  # per handler call, while faults are on
BURST = 3 * CHAOS_NOTIFICATIONS["BACKLOG_LIMIT"]
MAX_SOCKETS = CHAOS_NOTIFICATIONS["MAX_SOCKETS_PER_USER"]

FAULTS = (
    "bursts",
    "cache_clear",
    "pubsub_kill",
    "server_kill",
    "sender_death",
    "exceptions",
    "hostile",
)


def documented_close_codes() -> set[int]:
    """The codes of docs/websocket.md's "Close codes" table (4401 is checked apart: no session
    is revoked here, so no client may see it)."""
    text = (ROOT / "docs" / "websocket.md").read_text()
    table = text[text.index("## Close codes") :]
    table = table[: table.find("\n## ", 1)]
    rows = re.findall(r"^\|\s*(\d{4}(?:/\d{4})*)\s*\|", table, re.MULTILINE)
    return {int(code) for row in rows for code in row.split("/")} - {4401}


def chosen_faults() -> list[str]:
    wanted = os.environ.get("CHAOS_FAULTS", "all").strip()
    if wanted == "all":
        return list(FAULTS)
    if wanted in ("", "none"):
        return []
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = set(names) - set(FAULTS)
    assert not unknown, f"CHAOS_FAULTS: unknown {sorted(unknown)}; known: {', '.join(FAULTS)}"
    return names


# --- the rig: servers, processes, logs ----------------------------------------------------------


@dataclass
class Rig:
    directory: Path
    log: FaultLog
    layer: RedisServer
    cache: RedisServer
    kind: type[Server]  # daphne or uvicorn, all three alike
    servers: list[Server] = field(default_factory=list)
    senders: list[SenderProcess] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    harness_errors: list[str] = field(default_factory=list)

    def process_env(self, seed: int) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": "tests.chaos.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": self.layer.url,
            "CHAOS_LAYER_URL": self.layer.url,
            "CHAOS_CACHE_URL": self.cache.url,
            "CHAOS_SEED": str(seed),
            "CHAOS_FAULT_FLAG": str(self.directory / "faults-on"),
        }


@pytest.fixture(params=list(SERVERS))
def rig(request, tmp_path, settings):
    if connection.vendor != "postgresql":
        service_missing("the chaos test needs PostgreSQL (DATABASE_URL)")
    servers = []
    for name in ("layer", "cache"):
        (tmp_path / name).mkdir()
        servers.append(RedisServer(tmp_path / name))
    layer, cache = servers
    log = FaultLog(tmp_path / "faults.log")
    rig = Rig(tmp_path, log, layer, cache, SERVERS[request.param])
    plugin = ShowChaosLogsOnFailure(request.module.__name__, log, rig.servers, rig.senders)
    request.config.pluginmanager.register(plugin)
    try:
        layer.start()
        cache.start()
        # This process writes the sessions, into the servers' cache (and the database).
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": cache.url,
            }
        }
        yield rig
    finally:
        for sender in rig.senders:
            sender.kill()
        for server in rig.servers:
            server.stop()
        layer.stop()
        cache.stop()
        request.config.pluginmanager.unregister(plugin)


def print_now(capsys, text: str) -> None:
    with capsys.disabled():
        print(text, flush=True)


# --- users and their clients ------------------------------------------------------------------


@sync_to_async
def make_users(make_user) -> tuple[list, list[int]]:
    users = [make_user(f"chaos{n}") for n in range(USERS)]
    groups = []
    for name, members in (("g0", users[0:6]), ("g1", users[5:12]), ("g2", users[12:20])):
        group = Group.objects.create(name=f"chaos-{name}")
        group.user_set.add(*members)
        groups.append(group.pk)
    return users, groups


async def make_clients(users, ports: list[int], seed: int) -> list[ContractClient]:
    clients = []
    for index, user in enumerate(users):
        session = await session_of(user)
        for number in range(CLIENTS_PER_USER):
            name = f"u{index}c{number}"
            clients.append(
                ContractClient(
                    name,
                    user.pk,
                    session,
                    ports,
                    random.Random(f"{seed}:client:{name}"),
                    reloads=number == 0,
                    hostile=index < HOSTILE_USERS and number == CLIENTS_PER_USER - 1,
                )
            )
    return clients


@sync_to_async
def database_rows(user_ids: Sequence[int]) -> tuple[dict, dict]:
    """``{user: {id: title}}`` and ``{id: (user, title, created_at)}`` of the test's users."""
    expected: dict[int, dict[int, str]] = {user_id: {} for user_id in user_ids}
    rows = {}
    for nid, user_id, title, created in Notification.objects.filter(
        recipient_id__in=user_ids
    ).values_list("id", "recipient_id", "title", "created_at"):
        expected[user_id][nid] = title
        rows[nid] = (user_id, title, created.isoformat(timespec="milliseconds"))
    return expected, rows


# --- faults -----------------------------------------------------------------------------------


def fault_schedule(rng: random.Random, kinds: list[str], users: list[int]) -> list[tuple]:
    """(seconds into the fault phase, fault, arguments), in order."""
    events: list[tuple] = []

    def at(low: float, high: float) -> float:
        return round(rng.uniform(low, high) * FAULT_SECONDS, 2)

    if "bursts" in kinds:
        for number in range(4):
            options = {
                "user": rng.choice(users),
                "sender": rng.randrange(SENDERS),
                "one_transaction": number % 2 == 0,
            }
            events.append((at(0.05, 0.75), "burst", options))
    if "cache_clear" in kinds:
        events += [(at(0.1, 0.85), "cache_clear", {}) for _ in range(2)]
    if "pubsub_kill" in kinds:
        events += [(at(0.1, 0.85), "pubsub_kill", {}) for _ in range(3)]
    if "server_kill" in kinds:
        events.append((at(0.25, 0.5), "server_kill", {"server": rng.randrange(SERVER_PROCESSES)}))
    if "sender_death" in kinds:
        events += [
            (at(0.1, 0.8), "sender_death", {"sender": rng.randrange(SENDERS)}) for _ in range(2)
        ]
    return sorted(events, key=lambda event: event[0])


async def inject(rig: Rig, schedule: list[tuple], started: float) -> None:
    restarts = []
    for offset, fault, options in schedule:
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
        if fault == "burst":
            sender = rig.senders[options["sender"]]
            how = "in one transaction" if options["one_transaction"] else "in many transactions"
            rig.log(f"burst: {BURST} to user {options['user']} {how}, sender {sender.index}")
            sender.command(cmd="burst", user=options["user"], count=BURST,
                           one_transaction=options["one_transaction"])  # fmt: skip
        elif fault == "cache_clear":
            await sync_to_async(caches["default"].clear)()
            rig.log("cache.clear() (empties the cache's private Redis database)")
        elif fault == "pubsub_kill":
            client = redis.Redis.from_url(rig.layer.url)
            killed = await asyncio.to_thread(client.client_kill_filter, _type="pubsub")
            client.close()
            rig.log(f"CLIENT KILL TYPE pubsub on the layer's Redis: {killed} connections")
            rig.injected["pubsub connections killed"] += killed
        elif fault == "server_kill":
            server = rig.servers[options["server"]]
            assert server.process is not None
            server.process.kill()
            await asyncio.to_thread(server.process.wait, 5)
            rig.log(f"{server.name} {options['server']} (port {server.port}) killed with SIGKILL")
            restarts.append(asyncio.create_task(restart_server(rig, options["server"], 3)))
        elif fault == "sender_death":
            sender = rig.senders[options["sender"]]
            sender.expected_exit = True
            sender.command(cmd="die_after_commit")
            rig.log(f"sender {sender.index}: its next send dies right after COMMIT")
        rig.injected[fault] += 1
    await asyncio.gather(*restarts)


async def restart_server(rig: Rig, index: int, after: float) -> None:
    await asyncio.sleep(after)
    server = rig.servers[index]
    await asyncio.to_thread(server.start, START_TIMEOUT)
    rig.log(f"{server.name} {index} (port {server.port}) started again")


async def keep_senders_running(rig: Rig, stopping: asyncio.Event) -> None:
    """Start a sender again when it dies (told to, or not: that is a harness error)."""
    while not stopping.is_set():
        for sender in rig.senders:
            code = sender.exited()
            if code is None or stopping.is_set():
                continue
            if code == 17 and sender.expected_exit:
                rig.log(f"sender {sender.index} died right after COMMIT; starting it again")
            else:
                rig.harness_errors.append(f"sender {sender.index} exited with {code}")
                rig.log(f"sender {sender.index} exited with {code} unexpectedly; starting it again")
            await asyncio.to_thread(sender.start, START_TIMEOUT)
            sender.command(cmd="go")
        await asyncio.sleep(0.2)


# --- the final checks -------------------------------------------------------------------------


async def connect_all_at_once(session: str, ports: list[int], rng: random.Random) -> Counter:
    """Open MAX_SOCKETS sockets of one user at once; how each began (``hello`` or why not)."""
    outcomes: Counter[str] = Counter()
    async with contextlib.AsyncExitStack() as stack:

        async def one() -> None:
            port = rng.choice(ports)
            try:
                ws = await stack.enter_async_context(
                    connect(
                        f"ws://127.0.0.1:{port}/ws/notifications/",
                        additional_headers={"Cookie": f"sessionid={session}"},
                        origin=f"http://127.0.0.1:{port}",
                        proxy=None,
                        open_timeout=10,
                        close_timeout=1,
                    )
                )
            except (OSError, InvalidHandshake, TimeoutError) as error:
                outcomes[f"connect failed: {type(error).__name__}"] += 1
                return
            try:
                async with asyncio.timeout(10):
                    # A frame before hello is the clients' check to flag, not this one's.
                    while json.loads(await ws.recv()).get("type") != "hello":
                        pass
                outcomes["hello"] += 1
            except ConnectionClosed as closed:
                outcomes[f"close {closed.rcvd.code if closed.rcvd else 1006}"] += 1
            except TimeoutError:
                outcomes["no hello within 10 s"] += 1

        await asyncio.gather(*(one() for _ in range(MAX_SOCKETS)))
    return outcomes


async def every_user_connects(sessions: dict[int, str], ports: list[int], seed: int) -> dict:
    """Each user's last outcomes; retried (all of a user's sockets again) until every one says
    hello or CONNECT_CHECK_SECONDS pass: sockets just closed may take a moment to be released."""
    rng = random.Random(f"{seed}:connect-check")
    results: dict[int, Counter] = {}
    pending = list(sessions)
    deadline = time.monotonic() + CONNECT_CHECK_SECONDS
    while pending:
        outcomes = await asyncio.gather(
            *(connect_all_at_once(sessions[user_id], ports, rng) for user_id in pending)
        )
        results.update(zip(pending, outcomes, strict=True))
        pending = [user for user in pending if results[user]["hello"] != MAX_SOCKETS]
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    return results


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Played:
    clients: list[ContractClient]
    expected: dict[int, dict[int, str]]  # user -> {id: title}, from the database
    rows_by_id: dict[int, tuple[int, str, str]]
    connected: dict[int, Counter]  # user -> how its MAX_SOCKETS sockets began
    settle_seconds: float


async def play(rig: Rig, make_user, seed: int, kinds: list[str]) -> Played:
    """Start everything, send, inject the faults, stop them, settle, check who can connect."""
    users, groups = await make_users(make_user)
    user_ids = [user.pk for user in users]
    env = rig.process_env(seed)
    env["CHAOS_RAISE_PROBABILITY"] = RAISE_PROBABILITY if "exceptions" in kinds else "0"
    for index in range(SERVER_PROCESSES):
        log = rig.directory / f"{rig.kind.name}-{index}.log"
        rig.servers.append(rig.kind(env, log, application="tests.chaos.asgi:application"))
    for index in range(SENDERS):
        log = rig.directory / f"sender-{index}.log"
        rig.senders.append(SenderProcess(index, seed, user_ids, groups, env, log))
    processes = rig.servers + rig.senders
    await asyncio.gather(
        *(asyncio.to_thread(process.start, START_TIMEOUT) for process in processes)
    )
    ports = [server.port for server in rig.servers]
    rig.log(f"started {rig.kind.name} on ports {ports}")

    clients = await make_clients(users, ports, seed)
    tasks = [asyncio.create_task(client.run()) for client in clients]
    stopping = asyncio.Event()
    watcher = asyncio.create_task(keep_senders_running(rig, stopping))
    flag = Path(env["CHAOS_FAULT_FLAG"])
    try:
        # Everyone connected, then traffic, then faults over it.
        await asyncio.wait([asyncio.create_task(c.greeted.wait()) for c in clients], timeout=15)
        rig.log(f"{sum(bool(c.hellos) for c in clients)} of {len(clients)} clients connected")
        for sender in rig.senders:
            sender.command(cmd="go")
        await asyncio.sleep(WARM_UP_SECONDS)

        rig.log(f"faults on: {', '.join(kinds) or 'none'}")
        if "exceptions" in kinds:
            await asyncio.to_thread(flag.touch)
        if "hostile" in kinds:
            for client in clients:
                client.hostile_active = True
        schedule = fault_schedule(random.Random(f"{seed}:faults"), kinds, user_ids)
        started = time.monotonic()
        await asyncio.gather(inject(rig, schedule, started), asyncio.sleep(FAULT_SECONDS))

        await asyncio.to_thread(flag.unlink, missing_ok=True)
        for client in clients:
            client.hostile_active = False
        stopping.set()
        await watcher
        rig.log("faults off")
        await asyncio.gather(*(asyncio.to_thread(sender.stop) for sender in rig.senders))
        rig.log("senders stopped")

        expected, rows_by_id = await database_rows(user_ids)
        settle_started = time.monotonic()
        while time.monotonic() - settle_started < SETTLE_SECONDS:
            if all(set(expected[c.user_id]) <= set(c.held) for c in clients):
                break
            await asyncio.sleep(0.25)
        settle_seconds = time.monotonic() - settle_started
        rig.log(f"settled for {settle_seconds:.1f} s")
    finally:
        stopping.set()
        await asyncio.to_thread(flag.unlink, missing_ok=True)
        for client in clients:
            client.stop()
        await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()
        if not watcher.done():
            watcher.cancel()

    sessions = {client.user_id: client.session for client in clients}
    connected = await every_user_connects(sessions, ports, seed)
    rig.log("connect check done")
    return Played(clients, expected, rows_by_id, connected, settle_seconds)


def judge(rig: Rig, played: Played, seed: int) -> tuple[str, list[str]]:
    """The run's figures, and what failed."""
    clients, expected = played.clients, played.expected
    diffs = [diff_client(client, expected[client.user_id]) for client in clients]
    calls = rolled_back = 0
    for sender in rig.senders:
        for event in sender.events:
            if event["event"] in ("commit", "dying"):
                calls += len(event["titles"])
            elif event["event"] == "rollback":
                rolled_back += len(event["titles"])
    numbers = figures(diffs, expected, calls, rolled_back)
    faults = Counter(rig.injected)
    for index, server in enumerate(rig.servers):
        injected = server.log(10**9).count("chaos: injected")
        if injected:
            faults[f"consumer exceptions ({server.name} {index})"] = injected
    probes = sum(sum(outcomes.values()) for outcomes in numbers.probes.values())
    if probes:
        faults["hostile frames"] = probes
    locked_out = {
        user: outcomes
        for user, outcomes in played.connected.items()
        if outcomes["hello"] != MAX_SOCKETS
    }
    connect_text = f"{len(played.connected) - len(locked_out)} of {len(played.connected)} users"
    if locked_out:
        connect_text += "; locked out: " + "; ".join(
            f"user {user}: {dict(outcomes)}" for user, outcomes in locked_out.items()
        )
    text = summary(seed, faults, numbers, connect_text, len(clients), played.settle_seconds)

    failures = []
    if numbers.lost or numbers.extra or numbers.duplicated:
        failures.append(
            f"clients do not hold exactly what the database holds: lost {numbers.lost}, "
            f"not in the database {numbers.extra}, duplicated {numbers.duplicated}\n"
            + describe_failures(diffs, expected, played.rows_by_id)
        )
    if locked_out:
        failures.append(f"users who cannot open {MAX_SOCKETS} sockets at once: {connect_text}")
    undocumented = {
        code: count
        for code, count in numbers.closes.items()
        if code.isdigit() and int(code) not in documented_close_codes()
    }
    if undocumented:
        failures.append(f"closed with codes that docs/websocket.md does not have: {undocumented}")
    signed_out = [client.name for client in clients if client.signed_out]
    if signed_out:
        failures.append(f"clients closed with 4401 though signed in: {signed_out}")
    protocol = {c.name: c.protocol_errors[:3] for c in clients if c.protocol_errors}
    if protocol:
        failures.append(f"messages outside the protocol: {protocol}")
    dead = [i for i, server in enumerate(rig.servers) if server.process.poll() is not None]
    if dead:
        failures.append(f"{rig.kind.name} servers that died on their own: {dead}")
    return text, failures + rig.harness_errors


# --- the test ---------------------------------------------------------------------------------


async def test_chaos_nothing_lost_and_nobody_locked_out(rig, make_user, capsys):
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    kinds = chosen_faults()
    print_now(
        capsys,
        f"\nchaos: seed {seed} (CHAOS_SEED={seed} to repeat); faults: {', '.join(kinds) or 'none'}"
        f"; fault phase {FAULT_SECONDS:g} s; logs in {rig.directory}",
    )
    played = await play(rig, make_user, seed, kinds)
    text, failures = judge(rig, played, seed)
    print_now(capsys, text)
    every_check_passed = not failures  # (a bool: pytest would print the list a second time)
    assert every_check_passed, "\n\n".join(failures)
