"""The chaos test's books: what each client holds against what the database holds for its user,
the figures of the run, and a readable diff for a failing one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tests.chaos.client import ContractClient


@dataclass
class ClientDiff:
    client: ContractClient
    missing: list[int]
    extra: list[int]
    shown_twice: list[int]
    title_twice: list[str]

    @property
    def failed(self) -> bool:
        return bool(
            self.missing
            or self.extra
            or self.shown_twice
            or self.title_twice
            or self.client.content_changed
        )


def diff_client(client: ContractClient, expected: Mapping[int, str]) -> ClientDiff:
    held = client.held
    shown = Counter(client.shown)
    titles = Counter(held.values())
    return ClientDiff(
        client=client,
        missing=sorted(set(expected) - set(held)),
        extra=sorted(set(held) - set(expected)),
        shown_twice=sorted(nid for nid, count in shown.items() if count > 1),
        title_twice=sorted(title for title, count in titles.items() if count > 1),
    )


@dataclass
class Figures:
    rows: int = 0  # notifications in the database for the test's users
    calls: int = 0  # notify() calls committed
    rolled_back: int = 0  # notify() calls whose transaction rolled back
    expected: int = 0  # (client, notification) pairs to deliver
    live: int = 0
    resume: int = 0
    gap: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0
    redelivered: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    probes: dict[str, Counter[str]] = field(default_factory=dict)
    pages_without_progress: int = 0
    late: int = 0
    connects: int = 0
    hellos: int = 0
    resumes: int = 0


def figures(
    diffs: Iterable[ClientDiff],
    expected: Mapping[int, Mapping[int, str]],
    calls: int,
    rolled_back: int,
) -> Figures:
    result = Figures(rows=sum(len(rows) for rows in expected.values()), calls=calls)
    result.rolled_back = rolled_back
    for entry in diffs:
        client = entry.client
        rows = expected[client.user_id]
        result.expected += len(rows)
        for nid in rows:
            via = client.first_via.get(nid)
            if via == "live":
                result.live += 1
            elif via == "resume":
                result.resume += 1
            elif via == "gap":
                result.gap += 1
        result.lost += len(entry.missing)
        result.extra += len(entry.extra)
        result.duplicated += (
            len(entry.shown_twice) + len(entry.title_twice) + len(client.content_changed)
        )
        result.redelivered.update(client.redelivered)
        result.closes.update(client.closes)
        for (kind, outcome), count in client.probes.items():
            result.probes.setdefault(kind, Counter())[outcome] += count
        result.pages_without_progress += client.pages_without_progress
        result.late += client.late
        result.connects += client.connects
        result.hellos += client.hellos
        result.resumes += client.resumes
    return result


def counter_text(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(counter.items())) or "none"


def summary(
    seed: int,
    faults: Mapping[str, int],
    numbers: Figures,
    connect_check: str,
    clients: int,
    settle_seconds: float,
) -> str:
    return "\n".join(
        [
            f"chaos summary (seed {seed}; CHAOS_SEED={seed} repeats the run's choices)",
            f"  sent: {numbers.rows} notifications in {numbers.calls} committed notify() calls "
            f"({numbers.rolled_back} more rolled back), {numbers.expected} deliveries owed to "
            f"{clients} clients",
            f"  delivered live: {numbers.live}",
            f"  recovered by resume: {numbers.resume}",
            f"  recovered by gap detection: {numbers.gap}",
            f"  lost: {numbers.lost}",
            f"  duplicated: {numbers.duplicated}",
            f"  held but not in the database (rolled back or another user's): {numbers.extra}",
            f"  shown after a higher id (committed late, or recovered): {numbers.late}",
            f"  sent again and dropped by id (resume margin, races): "
            f"{counter_text(numbers.redelivered)}",
            f"  connects: {numbers.connects}, hellos: {numbers.hellos}, resumes sent: "
            f"{numbers.resumes}, incomplete backlog pages that brought nothing new (no cursor): "
            f"{numbers.pages_without_progress}",
            f"  faults injected: {counter_text(faults)}",
            f"  closes by code: {counter_text(numbers.closes)}",
            "  hostile frames, answers: "
            + (
                "; ".join(
                    f"{kind} {counter_text(outcomes)}"
                    for kind, outcomes in sorted(numbers.probes.items())
                )
                or "none"
            ),
            f"  settled in {settle_seconds:.1f} s; every user connects: {connect_check}",
        ]
    )


def describe_failures(
    diffs: Iterable[ClientDiff],
    expected: Mapping[int, Mapping[int, str]],
    rows_by_id: Mapping[int, tuple[int, str, str]],
    detailed: int = 10,
    limit: int = 12,
) -> str:
    """Per failing client: what is missing or extra, how each held row arrived, its closes; the
    first ``detailed`` ones also with rows (id, title, created_at) and the end of their history."""
    out: list[str] = []
    failing = [entry for entry in diffs if entry.failed]
    for number, entry in enumerate(failing):
        client = entry.client
        rows = expected[client.user_id]
        out.append(
            f"{client.name} (user {client.user_id}): holds {len(client.held)} of {len(rows)}; "
            f"missing {len(entry.missing)}, not in the database {len(entry.extra)}, shown twice "
            f"{len(entry.shown_twice)}, one title under two ids {len(entry.title_twice)}, content "
            f"changed {len(client.content_changed)}; first arrivals "
            f"{counter_text(Counter(client.first_via.values()))}; closes "
            f"{counter_text(client.closes)}; pages without progress "
            f"{client.pages_without_progress}; connected at the end: {client.connected_at_stop}"
        )
        if number >= detailed:
            continue
        for nid in entry.missing[:limit]:
            _, title, created = rows_by_id.get(nid, (0, rows.get(nid, "?"), "?"))
            out.append(f"    missing {nid} {title!r} created {created}")
        for nid in entry.extra[:limit]:
            owner, _, created = rows_by_id.get(nid, (None, "", "not in the database"))
            out.append(f"    extra {nid} {client.held[nid]!r} (owner {owner}, {created})")
        for nid in entry.shown_twice[:limit]:
            out.append(f"    shown twice {nid}")
        for title in entry.title_twice[:limit]:
            out.append(f"    one title under two ids {title!r}")
        out.append("    history: " + "\n             ".join(list(client.history)[-25:]))
    return "\n".join(out)
