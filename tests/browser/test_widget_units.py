"""The widget's modules one by one, in Chromium, without a server: the files are served from the
source tree to a page of a made-up origin, and each test imports the module it checks."""

import json
from pathlib import Path

import pytest
import pytest_asyncio
from django.utils import translation
from django.utils.translation import ngettext

from notifications.templatetags.notifications import _plural, widget_strings

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

ORIGIN = "http://widget.test"
STATIC = Path(__file__).resolve().parents[2] / "notifications" / "static"
MODULES = "/static/notifications/widget"


@pytest_asyncio.fixture(loop_scope="module")
async def page(module_chromium):
    context = await module_chromium.new_context()
    page = await context.new_page()
    page.set_default_timeout(5_000)

    async def serve(route):
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path == "/":
            await route.fulfill(
                body="<!doctype html><title>units</title>", content_type="text/html"
            )
        elif path.startswith("/static/") and (STATIC / path.removeprefix("/static/")).is_file():
            source = (STATIC / path.removeprefix("/static/")).read_text()
            await route.fulfill(body=source, content_type="text/javascript")
        else:
            await route.fulfill(status=404)

    await page.route(f"{ORIGIN}/**", serve)
    await page.goto(f"{ORIGIN}/")
    yield page
    await context.close()


async def run(page, module, body, arg=None):
    """``body`` is the inside of ``async (m, arg) => {...}``, m being the imported module."""
    return await page.evaluate(
        f"async (arg) => {{ const m = await import('{MODULES}/{module}'); "
        f"return await (async (m, arg) => {{ {body} }})(m, arg); }}",
        arg,
    )


async def test_backoff_is_full_jitter_doubling_to_a_cap(page):
    result = await run(
        page,
        "backoff.js",
        """
        const highest = new m.Backoff({ random: () => 0.999999 });
        const lowest = new m.Backoff({ random: () => 0 });
        const ceilings = Array.from({ length: 8 }, () => highest.next());
        highest.reset();
        return { ceilings, afterReset: highest.next(), lowest: lowest.next() };
        """,
    )
    assert result["ceilings"] == [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]
    assert result["afterReset"] == 999
    assert result["lowest"] == 0


async def test_only_http_and_site_relative_urls_are_followed(page):
    urls = {
        "/invoices/7/": f"{ORIGIN}/invoices/7/",
        "https://example.com/a?b=c": "https://example.com/a?b=c",
        "HTTP://EXAMPLE.COM/": "http://example.com/",
        "javascript:alert(1)": None,
        " javascript:alert(1)": None,
        "JaVaScRiPt:alert(1)": None,
        "data:text/html,<script>alert(1)</script>": None,
        "vbscript:msgbox": None,
        "//evil.example/": None,
        "/\\evil.example/": None,
        "\\\\evil.example": None,
        "java\nscript:alert(1)": None,
        "relative/path": None,
        "ftp://example.com/": None,
        "": None,
    }
    result = await run(
        page,
        "safe-url.js",
        "return Object.fromEntries(arg.map((url) => [url, m.safeUrl(url)]));",
        list(urls),
    )
    assert result == urls


@pytest.mark.parametrize(
    ("language", "singular", "plural"),
    [
        ("fr", "Notifications, %(count)s unread", "Notifications, %(count)s unread"),
        ("pl", "%(size)d byte", "%(size)d bytes"),  # Django's own: four forms in Polish
        ("ru", "%(size)d byte", "%(size)d bytes"),
    ],
)
async def test_plural_forms_match_gettext_for_every_count(page, language, singular, plural):
    with translation.override(language):
        forms = _plural(lambda n: ngettext(singular, plural, n))
        expected = [
            ngettext(singular, plural, n).replace("%(count)s", str(n)) for n in range(0, 1000)
        ]
    assert len(set(expected)) > 1, "the catalog translates this message"
    result = await run(
        page,
        "i18n.js",
        """
        const t = new m.Translations({ plurals: { message: arg.forms } }, arg.language);
        return Array.from({ length: 1000 }, (_, n) => t.plural("message", n));
        """,
        {"forms": forms, "language": language},
    )
    assert result == expected


async def test_the_widget_strings_of_a_language_count_in_it(page):
    with translation.override("fr"):
        strings = widget_strings()
    result = await run(
        page,
        "i18n.js",
        """
        const t = new m.Translations(arg, "fr");
        return [1, 2, 100].map((n) => t.plural("bellUnread", n)).concat(t.state("connected"));
        """,
        strings,
    )
    assert result == [
        "Notifications, 1 non lue",
        "Notifications, 2 non lues",
        "Notifications, 100 non lues",
        "En direct",
    ]


async def test_relative_times_in_the_pages_language(page):
    result = await run(
        page,
        "time.js",
        """
        const now = Date.parse("2026-11-26T12:00:00Z");
        return [
          m.relativeTime("2026-11-26T11:59:50Z", "en", now),
          m.relativeTime("2026-11-26T11:55:00Z", "en", now),
          m.relativeTime("2026-11-26T09:00:00Z", "en", now),
          m.relativeTime("2026-11-25T12:00:00Z", "en", now),
          m.relativeTime("2026-11-26T11:55:00Z", "fr", now),
          m.relativeTime("not a date", "en", now),
        ];
        """,
    )
    assert result == ["now", "5 minutes ago", "3 hours ago", "yesterday", "il y a 5 minutes", ""]


async def test_the_inbox_drops_duplicates_and_keeps_pages_in_order(page):
    result = await run(
        page,
        "inbox.js",
        """
        const n = (id, extra = {}) => ({ id, read_at: null, archived_at: null, ...extra });
        const inbox = new m.Inbox();
        inbox.addPage([n(30), n(29), n(28)], "/next");
        const fresh = inbox.receive([n(29), n(31), n(10), n(32, { archived_at: "x" })]);
        const again = inbox.receive([n(31)]);
        const touched = inbox.applyChange([31, 99], "read");
        inbox.applyChange([28], "archived");
        inbox.addPage([n(27), n(10)], null);
        return {
          fresh: fresh.map((x) => x.id),
          again: again.length,
          newest: inbox.newestId,
          touched,
          listed: inbox.list().map((x) => x.id),
          read31: Boolean(inbox.items.get(31).read_at),
        };
        """,
    )
    # 10 is below the paged-in range: it waits for its page, and is not listed twice then. 99
    # was never heard of: the server names only rows it changed, so that is news too.
    assert result == {
        "fresh": [10, 31],
        "again": 0,
        "newest": 32,
        "touched": [31, 99],
        "listed": [31, 30, 29, 27, 10],
        "read31": True,
    }


async def test_a_change_heard_twice_is_news_once(page):
    """The tab that made a change applies it, then hears the server's echo of it (and the other
    tabs hear it relayed, then echoed): only the first changes anything."""
    result = await run(
        page,
        "inbox.js",
        """
        const n = (id, extra = {}) => ({
          id, read_at: null, seen_at: null, archived_at: null, ...extra,
        });
        const inbox = new m.Inbox();
        inbox.addPage([n(3), n(2, { read_at: "x" }), n(1, { archived_at: "x" })], null);
        inbox.setCounts(1, 2);
        const steps = {
          read: inbox.applyChange([3], "read"),
          readEcho: inbox.applyChange([3], "read"),
          countsAfterRead: [inbox.unreadCount, inbox.unseenCount],
          unread: inbox.applyChange([3], "unread"),
          archivedInThePage: inbox.applyChange([1], "archived"),
          unlisted: inbox.applyChange([50], "seen"),
          unlistedEcho: inbox.applyChange([50], "seen"),
          archive: inbox.applyChange([3], "archived"),
          archiveEcho: inbox.applyChange([3], "archived"),
          readOfArchived: inbox.applyChange([3], "read"),
          counts: [inbox.unreadCount, inbox.unseenCount],
          unknownState: inbox.applyChange([2], "frozen"),
        };
        steps.refreshSame = inbox.refresh([n(2, { read_at: "x" })]).changed;
        steps.refreshUnread = inbox.refresh([n(2)]).changed;
        steps.listed = inbox.list().map((x) => [x.id, Boolean(x.read_at)]);
        return steps;
        """,
    )
    assert result == {
        "read": [3],
        "readEcho": [],
        "countsAfterRead": [0, 2],
        "unread": [3],
        "archivedInThePage": [],
        "unlisted": [50],
        "unlistedEcho": [],
        "archive": [3],
        "archiveEcho": [],
        "readOfArchived": [3],  # read while archived (elsewhere): a change all the same
        "counts": [0, 1],
        "unknownState": [],
        "refreshSame": [],
        "refreshUnread": [2],
        "listed": [[2, False]],
    }


async def test_a_poll_brings_its_counts_with_what_it_found_in_one_message(page):
    """One poll, one message, so one change event: the counts travel with the notifications or
    the fresh first page they were polled with."""
    result = await run(
        page,
        "sync.js",
        """
        const { Inbox } = await import("/static/notifications/widget/inbox.js");
        const n = (id) => ({ id, read_at: null, seen_at: null, archived_at: null });
        const inbox = new Inbox();
        inbox.addPage([n(10), n(9)], null);
        const delivered = [];
        const api = {
          newerThan: async (after) => [n(12), n(11)],
          page: async () => ({ results: [n(12), n(11), n(10)], next: null }),
        };
        const sync = new m.Sync({
          api, url: "ws://widget.test/", inbox, deliver: (message) => delivered.push(message),
          ensureLoaded: async () => true, setState: () => {},
        });
        sync.poller.running = true; // polling, as it is whenever a poll answers
        await sync.polled({ unread_count: 4, unseen_count: 3, last_id: 12 });
        inbox.receive([n(11), n(12)]);
        await sync.polled({ unread_count: 3, unseen_count: 3, last_id: 12 });
        return delivered.map((m) => ({ ...m, notifications: m.notifications.map((x) => x.id) }));
        """,
    )
    assert result == [
        {
            "type": "backlog",
            "notifications": [11, 12],
            "complete": True,
            "unread_count": 4,
            "unseen_count": 3,
        },
        {"type": "refresh", "notifications": [12, 11, 10], "unread_count": 3, "unseen_count": 3},
    ]


async def test_what_a_poll_fetched_after_a_socket_said_hello_is_dropped(page):
    """The socket's hello stopped polling while a poll was fetching: the socket's word is newer."""
    result = await run(
        page,
        "sync.js",
        """
        const { Inbox } = await import("/static/notifications/widget/inbox.js");
        const n = (id) => ({ id, read_at: null, seen_at: null, archived_at: null });
        const inbox = new Inbox();
        inbox.addPage([n(10)], null);
        const delivered = [];
        let sync;
        const hello = async () => { sync.poller.stop(); return [n(11)]; };
        const page = async () => ({ results: await hello(), next: null });
        const api = { newerThan: hello, page };
        sync = new m.Sync({
          api, url: "ws://widget.test/", inbox, deliver: (message) => delivered.push(message),
          ensureLoaded: async () => true, setState: () => {},
        });
        sync.poller.running = true;
        await sync.polled({ unread_count: 0, unseen_count: 0, last_id: 11 });
        sync.poller.running = true;
        await sync.polled({ unread_count: 0, unseen_count: 0, last_id: 10 });
        return delivered;
        """,
    )
    assert result == []


async def test_a_poll_asked_for_while_one_is_under_way_follows_it_at_once(page):
    """After a change made here the widget polls at once; if a poll is under way then, its answer
    may predate the change, so another follows it rather than a whole interval later."""
    result = await run(
        page,
        "poller.js",
        """
        const started = [];
        let answer;
        const api = {
          unreadCount: () => {
            started.push(performance.now());
            return new Promise((resolve) => { answer = resolve; });
          },
        };
        const poller = new m.Poller({ api, onCounts: async () => {}, onSignedOut: () => {} });
        const turn = () => new Promise((resolve) => setTimeout(resolve, 20));
        poller.start();
        await turn();
        poller.now(); // while the first poll is under way
        answer({ status: 200, etag: '"1"', intervalSeconds: 3600,
                 counts: { unread_count: 0, unseen_count: 0, last_id: null } });
        await turn();
        const polls = started.length;
        poller.stop();
        return polls;
        """,
    )
    assert result == 2


async def test_a_change_up_to_an_id_applies_to_every_listed_notification_up_to_it(page):
    result = await run(
        page,
        "inbox.js",
        """
        const n = (id, extra = {}) => ({ id, read_at: null, seen_at: null, archived_at: null,
                                         ...extra });
        const inbox = new m.Inbox();
        inbox.addPage([n(40), n(35), n(30, { read_at: "earlier" }), n(20)], null);
        // 200,000 changed: the frame names none of them, only how far the change went.
        const read = inbox.applyChange([], "read", 35, "now");
        const seen = inbox.applyChange([], "seen", 20, "now");
        const nothing = inbox.applyChange([], "read", null, "now");
        return {
          read: read.sort((a, b) => a - b),
          seen,
          nothing,
          states: inbox.list().map((x) => [x.id, x.read_at, x.seen_at]),
        };
        """,
    )
    assert result == {
        "read": [20, 35],  # 30 was read already, 40 arrived after the change
        "seen": [20],
        "nothing": [],
        "states": [
            [40, None, None],
            [35, "now", None],
            [30, "earlier", None],
            [20, "now", "now"],
        ],
    }


async def test_a_socket_that_stops_answering_is_taken_for_dead(page):
    answered = []

    async def silent_server(socket):
        socket.on_message(lambda message: answered.append(json.loads(message)["type"]))

    await page.route_web_socket("ws://widget.test/silent/", silent_server)

    async def answering_server(socket):
        socket.on_message(
            lambda message: socket.send(json.dumps({"type": "pong", **json.loads(message)}))
        )

    await page.route_web_socket("ws://widget.test/answering/", answering_server)
    result = await run(
        page,
        "socket.js",
        """
        const watch = (url) => new Promise((resolve) => {
          const socket = new m.HeartbeatSocket(url, {
            heartbeatMs: 100, timeoutMs: 150, onMessage() {},
            onClose: (code) => resolve({ code }),
          });
          setTimeout(() => resolve({ open: socket.open, pings: socket.pings }), 900);
        });
        return [await watch("ws://widget.test/silent/"), await watch("ws://widget.test/answering/")];
        """,
    )
    silent, answering = result
    assert silent == {"code": 4000}
    assert answered[:1] == ["ping"]
    assert answering["open"] is True and answering["pings"] >= 5


@pytest.mark.parametrize("code", [4012, 1012, 4013, 1013, 4500, 1006, 4401])
async def test_every_close_but_4401_means_come_back(page, code):
    """uvicorn's own 1012 (stopping) is as good as the app's 4012 (docs/websocket.md)."""

    async def closing_server(socket):
        await socket.close(code=code)

    await page.route_web_socket(f"ws://widget.test/closes-{code}/", closing_server)
    states = await run(
        page,
        "sync.js",
        """
        const states = [];
        const sync = new m.Sync({
          api: {}, url: arg, inbox: {}, deliver() {}, ensureLoaded: async () => {},
          setState: (state) => states.push(state), heartbeatMs: 60000, timeoutMs: 60000,
          failuresBeforePolling: 1000,
        });
        sync.connect();
        await new Promise((resolve) => setTimeout(resolve, 300));
        sync.stop();
        return states;
        """,
        f"ws://widget.test/closes-{code}/",
    )
    if code == 4401:
        assert states == ["signed-out"]
    else:
        assert states and set(states) == {"reconnecting"}


async def test_a_grouped_notification_replaces_the_unread_ones_of_its_key(page):
    result = await run(
        page,
        "inbox.js",
        """
        const n = (id, key = "", count = 1, extra = {}) => ({
          id, group_key: key, group_count: count, read_at: null, archived_at: null, ...extra,
        });
        const inbox = new m.Inbox();
        // 5 is unread, 4 was read (the server folds only unread ones), 3 is of another key
        inbox.addPage([n(5, "k"), n(4, "k", 3, { read_at: "x" }), n(3, "j")], null);
        const before = inbox.takeReplaced();
        const fresh = inbox.receive([n(7, "k", 2), n(5, "k")]);
        const replaced = inbox.takeReplaced();
        const afterPush = inbox.list().map((x) => x.id);
        // A page fetched before the fold lands late: what 7 replaced stays out.
        inbox.refresh([n(7, "k", 2), n(6, "k")]);
        const afterStalePage = inbox.list().map((x) => x.id);
        // A lone one of the key (nothing folded: count 1) replaces nothing.
        inbox.receive([n(8, "k")]);
        // Ungrouped ones never replace anything.
        inbox.receive([n(9), n(10, "", 2)]);
        return {
          before,
          fresh: fresh.map((x) => x.id),
          replaced,
          afterPush,
          afterStalePage,
          listed: inbox.list().map((x) => x.id),
          again: inbox.takeReplaced(),
        };
        """,
    )
    assert result == {
        "before": [],
        "fresh": [7],
        "replaced": [5],
        "afterPush": [7, 4, 3],
        "afterStalePage": [7, 4, 3],
        "listed": [10, 9, 8, 7, 4, 3],
        "again": [],
    }


async def test_grouped_items_say_who_and_how_many_in_the_pages_language(page):
    with translation.override("fr"):
        strings = widget_strings()
    result = await run(
        page,
        "item.js",
        """
        const { Translations } = await import("/static/notifications/widget/i18n.js");
        const t = new Translations(arg, "fr");
        const alice = { type: "auth.user", id: "1", display: "alice" };
        const sly = { type: "auth.user", id: "2", display: "%(count)s %(actor)s" };
        return [
          m.actorsText({ group_count: 5, actors: [alice], actor: alice }, t),
          m.actorsText({ group_count: 2, actors: [alice], actor: alice }, t),
          m.actorsText({ group_count: 1, actors: [alice], actor: alice }, t),
          m.actorsText({ group_count: 1, actors: [], actor: alice }, t),
          m.actorsText({ group_count: 3, actors: [], actor: null }, t),
          m.actorsText({ group_count: 1, actors: [], actor: null }, t),
          m.actorsText({ group_count: 1001, actors: [sly], actor: sly }, t),
        ];
        """,
        strings,
    )
    assert result == [
        "alice et 4 autres",
        "alice et 1 autre",
        "alice",
        "alice",
        "et 2 autres semblables",
        "",
        "%(count)s %(actor)s et 1\u202f000 autres",  # a name is never read as a placeholder
    ]


async def test_the_servers_refusal_is_read_as_text(page):
    result = await run(
        page,
        "preferences.js",
        """
        return [
          m.errorMessages({ muted_categories: ["'security' cannot be muted"] }),
          m.errorMessages({ muted_categories: { 0: ["Not a slug."] }, muted_levels: ["Bad."] }),
          m.errorMessages({ detail: "JSON parse error" }),
          m.errorMessages(null),
        ];
        """,
    )
    assert result == [
        ["'security' cannot be muted"],
        ["Not a slug.", "Bad."],
        ["JSON parse error"],
        [],
    ]
