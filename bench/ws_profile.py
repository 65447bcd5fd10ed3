"""Where the time goes in an app server and its sender during ``bench.websocket``'s deliveries
(``--profile``): py-spy on both, summed up by ``bench.lib.profiling.summarise``."""

import time
from typing import Any

from bench.lib import profiling
from bench.lib.report import RESULTS, median
from bench.ws_run import BROADCAST, EVERYONE, LATENCY, PER_USER, Run, Server

SERVER_FRAMES = (  # see bench.lib.profiling.summarise
    ("channel layer: redis-py reading/parsing replies", "", "/redis/"),
    ("channel layer: pub/sub receive loop (_do_receiving)", "_do_receiving", "channels_redis/"),
    ("channel layer: core receive (receive_single, BZPOPMIN)", "receive_single", "channels_redis/"),
    ("channel layer: msgpack deserialize", "deserialize", "channels_redis/"),
    (
        "Channels: a task per event per socket (await_many_dispatch)",
        "await_many_dispatch",
        "/channels/utils",
    ),
    ("consumer: dispatch of the event (AsyncConsumer.dispatch)", "dispatch", "channels/consumer"),
    ("  consumer: notifications_created", "notifications_created", "notifications/"),
    ("  consumer: JSON encoding (encode_json)", "encode_json", "channels/generic/websocket"),
    ("hub: one event to the local sockets (Hub.deliver)", "deliver", "notifications/realtime/hub"),
    (
        "  hub: rows picked, frames encoded once (created_frames)",
        "created_frames",
        "notifications/realtime/broker",
    ),
    ("  hub: per socket (NotificationConsumer.push)", "push", "notifications/realtime/consumer"),
    ("daphne: handle_reply (ASGI send -> protocol)", "handle_reply", "daphne/"),
    ("  autobahn: sendMessage (framing)", "sendMessage", "autobahn/"),
    ("  twisted: transport write", "write", "twisted/internet/"),
    ("twisted: socket writes (doWrite)", "doWrite", "twisted/internet/"),
    ("asyncio: task steps (Task.__step / _run)", "_run", "asyncio/events"),
    ("daphne: timeouts and pings (check_timeouts)", "check_timeouts", "daphne/"),
    ("daphne: application_checker", "application_checker", "daphne/"),
    ("uvicorn: wsproto protocol (WSProtocol)", "", "uvicorn/protocols/websockets/"),
    ("  wsproto: framing and parsing", "", "/wsproto/"),
    ("database (psycopg)", "", "/psycopg/"),
)
SENDER_FRAMES = (
    ("notify(): all of it", "notify", "notifications/services"),
    ("  INSERT ... SELECT (_insert)", "_insert", "notifications/"),
    ("  validate_content", "validate_content", "notifications/"),
    ("after commit: outbox flush (receivers)", "flush", "notifications/"),
    ("  per-user counts (counts_by_recipient)", "counts_by_recipient", "notifications/"),
    ("  version bump (versions.bump)", "bump", "notifications/versions"),
    ("  payloads (serialize)", "serialize", "notifications/"),
    ("  who is online (online)", "online", "notifications/"),
    ("  the push: send (hands the batch to the push loop, waits)", "send", "notifications/"),
    ("    pipelined PUBLISH (publish)", "publish", "notifications/"),
    ("    group_send (layers other than pub/sub)", "group_send", "channels_redis/"),
    ("    msgpack serialize", "serialize", "channels_redis/"),
    ("    redis-py (commands, round trips)", "", "/redis/"),
    ("    asgiref (async_to_sync: thread, loop)", "", "asgiref/"),
    ("database (psycopg)", "", "/psycopg/"),
    ("database (Django ORM)", "", "django/db/"),
)
# The push's long-lived loop; async_to_sync's one-thread executors (in-memory layer).
PUSH_THREADS = ("notifications-push", "ThreadPoolExecutor", "asyncio")
VIEWS = (  # whose stacks, which of their threads
    ("server", "all threads holding the GIL", SERVER_FRAMES, None),
    ("sender", "main thread, wall time", SENDER_FRAMES, "MainThread".__eq__),
    ("sender", "the push's loop threads", SENDER_FRAMES, lambda t: t.startswith(PUSH_THREADS)),
)


async def profile(run: Run, server: Server) -> str:
    args, sections = run.args, []
    for scenario in (PER_USER, BROADCAST, LATENCY, EVERYONE):
        indices = range(args.broadcast_users if scenario == EVERYONE else args.users)
        how = {PER_USER: {"rounds": args.per_user_rounds}, BROADCAST: {"rounds": args.rounds}}
        how[LATENCY] = {"paced": min(args.paced, 200)}
        what = scenario.split(",")[-1].split("(")[0].strip().replace(" ", "-")
        slug = f"{server.name.replace('/', '-')}-{what}"
        raw = {who: RESULTS / f"profile-websocket-{slug}-{who}.txt" for who in ("server", "sender")}
        run.say(f"profiling {server.name} / {scenario}: py-spy on {server.pid} and its sender")
        spied = [(server.pid, raw["server"], "--gil --nonblocking")]
        spied.append((server.trigger.pid, raw["sender"], "--idle --nonblocking"))
        deliveries: list[Any] = []
        async with profiling.sampled(spied, args.profile_seconds, rate=250):
            deadline = time.monotonic() + args.profile_seconds
            while len(deliveries) < 50 and time.monotonic() < deadline:
                d = await run.deliver(server, scenario, indices, **how.get(scenario, {}))
                deliveries.append(d)
        received = sum(d.received for d in deliveries)
        missing, rate = sum(d.missing for d in deliveries), median(d.rate for d in deliveries)
        sampled = f"{len(deliveries)} deliveries while sampled ({received} messages, {missing}"
        sampled += f" missing, median {rate:,.0f} msg/s). Raw stacks: `bench/results/"
        for who, view, frames, threads in VIEWS:
            summary = profiling.summarise(raw[who], frames, threads)
            title = f"## {server.name}: {scenario}, {who} ({view})"
            sections.append(f"{title}\n\n{sampled}{raw[who].name}`.\n\n{summary}")
    return "\n".join(sections)
