"""A sender process of the chaos test: ``notify()`` in a loop, as an application server would.

``python -m tests.chaos.sender --index N --incarnation K --seed S --users 1,2 --groups 3,4``
with ``DJANGO_SETTINGS_MODULE=tests.chaos.settings`` and ``DATABASE_URL`` in the environment.

Background traffic, once told ``go``: one user, a list of users, an auth group, several sends
in one transaction, a long transaction (its rows commit after rows with higher ids), a
transaction rolled back (never to be pushed). Commands, one JSON object a line on stdin:
``{"cmd": "go"}``, ``{"cmd": "burst", "user": id, "count": n, "one_transaction": bool}``,
``{"cmd": "die_after_commit"}`` (the next send's process exits right after its COMMIT, before
its on-commit push), ``{"cmd": "stop"}``. Reports, one JSON object a line on stdout: ``ready``,
``commit`` and ``rollback`` (with the titles), ``dying``, ``error``, ``stopped``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import sys
import threading
import time
from typing import Any

import django


def report(event: str, **fields: Any) -> None:
    print(json.dumps({"t": round(time.time(), 3), "event": event, **fields}), flush=True)


class Rollback(Exception):
    pass


class Sender:
    def __init__(
        self, index: int, incarnation: int, seed: int, users: list[int], groups: list[int]
    ):
        self.name = f"s{index}.{incarnation}"
        self.random = random.Random(f"{seed}:{index}:{incarnation}")
        self.users = users
        self.groups = groups
        self.sequence = 0
        self.die_after_commit = False

    def title(self, kind: str) -> str:
        self.sequence += 1
        return f"{self.name}-{self.sequence} {kind}"

    def send(self, recipients: Any, kind: str, titles: list[str]) -> None:
        from notifications.services import notify

        title = self.title(kind)
        notify(recipients, title, body=f"chaos {kind}", category="chaos", data={"kind": kind})
        titles.append(title)

    def transaction(self, kind: str, work: Any) -> None:
        """Run ``work(titles)`` in one transaction and report what it committed."""
        from django.db import transaction

        titles: list[str] = []
        rolled_back = False
        try:
            with transaction.atomic():
                if self.die_after_commit:
                    self.die_after_commit = False
                    transaction.on_commit(lambda: self.die(titles))
                work(titles)
        except Rollback:
            rolled_back = True
        except Exception as error:  # the database restarting, say: report and go on
            report("error", sender=self.name, kind=kind, error=repr(error))
            return
        report("rollback" if rolled_back else "commit", sender=self.name, kind=kind, titles=titles)

    def die(self, titles: list[str]) -> None:
        # Registered before the send's own on-commit step, so that it runs first: the rows are
        # committed and their push never leaves, as when a process dies right after COMMIT.
        report("dying", sender=self.name, titles=titles)
        os._exit(17)

    def some_users(self, low: int, high: int) -> list[int]:
        return self.random.sample(self.users, self.random.randint(low, high))

    def background_step(self) -> None:
        from django.contrib.auth.models import Group

        r = self.random.random()
        if r < 0.40:
            user = self.random.choice(self.users)
            self.transaction("one", lambda titles: self.send(user, "one", titles))
        elif r < 0.60:
            users = self.some_users(2, 4)
            self.transaction("list", lambda titles: self.send(users, "list", titles))
        elif r < 0.70:
            group = Group.objects.get(pk=self.random.choice(self.groups))
            self.transaction("group", lambda titles: self.send(group, "group", titles))
        elif r < 0.80:
            calls = [self.some_users(1, 2) for _ in range(self.random.randint(2, 3))]

            def several(titles: list[str]) -> None:
                for users in calls:
                    self.send(users, "several", titles)

            self.transaction("several", several)
        elif r < 0.92:
            first, later, hold = (
                self.random.choice(self.users),
                self.some_users(1, 3),
                self.random.uniform(0.5, 2.5),
            )

            def long(titles: list[str]) -> None:
                # Takes its ids now, commits after rows that other senders write meanwhile.
                self.send(first, "long", titles)
                time.sleep(hold)
                self.send(later, "long", titles)

            self.transaction("long", long)
        else:
            users = self.some_users(1, 3)

            def rolled_back(titles: list[str]) -> None:
                self.send(users, "rolledback", titles)
                raise Rollback

            self.transaction("rolledback", rolled_back)

    def burst(self, user: int, count: int, one_transaction: bool) -> None:
        if one_transaction:

            def all_at_once(titles: list[str]) -> None:
                for _ in range(count):
                    self.send(user, "burst", titles)

            self.transaction("burst", all_at_once)
        else:
            for _ in range(count):
                self.transaction("burst", lambda titles: self.send(user, "burst", titles))
                time.sleep(0.02)


def read_commands(commands: queue.Queue) -> None:
    for line in sys.stdin:
        if line.strip():
            commands.put(json.loads(line))
    commands.put({"cmd": "stop"})  # stdin closed: the test is gone


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--incarnation", type=int, default=0)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--groups", required=True)
    args = parser.parse_args()
    django.setup()
    from django.db import connection

    sender = Sender(
        args.index,
        args.incarnation,
        args.seed,
        [int(u) for u in args.users.split(",")],
        [int(g) for g in args.groups.split(",")],
    )
    commands: queue.Queue = queue.Queue()
    threading.Thread(target=read_commands, args=(commands,), daemon=True).start()
    connection.ensure_connection()
    report("ready", sender=sender.name, pid=os.getpid())
    going = False
    while True:
        try:
            command = commands.get(timeout=0.05 if not going else 0)
        except queue.Empty:
            command = None
        if command is not None:
            name = command["cmd"]
            if name == "stop":
                break
            if name == "go":
                going = True
            elif name == "burst":
                sender.burst(command["user"], command["count"], command["one_transaction"])
            elif name == "die_after_commit":
                sender.die_after_commit = True
                users = sender.some_users(1, 3)
                sender.transaction(
                    "dies", lambda titles, users=users: sender.send(users, "dies", titles)
                )
            continue
        if going:
            sender.background_step()
            time.sleep(sender.random.uniform(0.2, 0.6))
    report("stopped", sender=sender.name, sent=sender.sequence)
    connection.close()


if __name__ == "__main__":
    main()
