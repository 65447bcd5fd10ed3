// The leader's link to the server: the WebSocket when it works, polling while it does not.
//
// Every (re)connect ends in `resume` from the newest id this tab has, so nothing sent while the
// socket was down is lost; reconnects wait with full-jitter backoff (1 s doubling to 30 s).
// After `failuresBeforePolling` attempts in a row that never reached `hello`, it polls the REST
// API meanwhile, and stops as soon as a socket says hello again. Close code 4401 (signed out)
// ends it all. Messages go to `deliver` in the socket protocol's shapes, plus `counts` and
// `refresh` (a fresh first page) from polling.
//
// The socket protocol's one source is notifications/protocol.py (docs/websocket.md describes
// it): the frame and message types and the close code named here are its own, and
// tests/test_protocol.py checks that they still are.

import { Backoff } from "./backoff.js";
import { Poller } from "./poller.js";
import { HeartbeatSocket } from "./socket.js";

const CLOSE_UNAUTHENTICATED = 4401; // signed out: never reconnect

export class Sync {
  constructor({
    api,
    url,
    inbox,
    deliver,
    ensureLoaded,
    setState,
    heartbeatMs,
    timeoutMs,
    failuresBeforePolling = 2,
  }) {
    Object.assign(this, { api, url, inbox, deliver, ensureLoaded, setState });
    this.socketOptions = { heartbeatMs, timeoutMs };
    this.failuresBeforePolling = failuresBeforePolling;
    this.backoff = new Backoff();
    this.failures = 0;
    this.stopped = false;
    this.poller = new Poller({
      api,
      onCounts: (counts) => this.polled(counts),
      onSignedOut: () => this.signedOut(),
    });
    this.onOnline = () => this.retryNow();
  }

  start() {
    window.addEventListener("online", this.onOnline);
    if (typeof WebSocket !== "function") {
      this.startPolling();
      return;
    }
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retry);
    this.poller.stop();
    this.socket?.close();
  }

  // A change was made elsewhere in this browser: a poller catches up at once (a socket hears of
  // it by itself).
  nudge() {
    this.poller.now();
  }

  connect() {
    clearTimeout(this.retry);
    if (this.stopped) return;
    this.socket = new HeartbeatSocket(this.url, {
      ...this.socketOptions,
      onMessage: (message) => this.received(message),
      onClose: (code) => this.closed(code),
    });
  }

  retryNow() {
    if (this.stopped || this.socket?.open || typeof WebSocket !== "function") return;
    this.backoff.reset();
    this.socket?.close();
    this.connect();
    this.poller.now();
  }

  received(message) {
    switch (message.type) {
      case "hello":
        this.hello(message);
        break;
      case "backlog":
        this.deliver(message);
        if (!message.complete) this.nextPage(message.cursor);
        break;
      case "notification":
      case "changed":
        this.deliver(message);
        break;
      case "error":
        console.warn("notifications: the server refused a message:", message.code, message.detail);
        break;
    }
  }

  async hello(hello) {
    this.failures = 0;
    this.backoff.reset();
    this.poller.stop();
    this.deliver({
      type: "counts",
      unread_count: hello.unread_count,
      unseen_count: hello.unseen_count,
    });
    // Nothing shown yet: what the server holds up to hello's last_id comes by REST, the rest
    // is pushed (this socket joined the user's group before saying hello).
    await this.ensureLoaded(hello.last_id);
    this.resume(hello.last_id);
    if (this.socket?.open) this.setState("connected");
  }

  // From the newest id this tab has. An inbox that was empty when it loaded has none: then
  // everything is news (resume leaves out the row at `after` itself, so hello's last_id would
  // lose it). Only when the first page could not load does hello's last_id stand in: that page
  // brings what came before once it loads, and resuming from 0 would walk the whole inbox.
  resume(lastIdOfHello = null) {
    const after = this.inbox.newestId ?? (this.inbox.loaded ? 0 : (lastIdOfHello ?? 0));
    this.resumedAfter = after;
    this.socket?.send({ type: "resume", after });
  }

  // More of the same resume wait: the next page comes with the cursor the server handed out
  // (and the same `after`). Resuming from the newest id received instead would move the window
  // of late commits and could bring back the same page forever.
  nextPage(cursor) {
    if (Number.isInteger(cursor)) {
      this.socket?.send({ type: "resume", after: this.resumedAfter, cursor });
    } else {
      this.resume();
    }
  }

  closed(code) {
    this.socket = null;
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHENTICATED) {
      this.signedOut();
      return;
    }
    this.failures += 1;
    if (this.failures >= this.failuresBeforePolling) this.startPolling();
    else this.setState("reconnecting");
    this.retry = setTimeout(() => this.connect(), this.backoff.next());
  }

  startPolling() {
    this.setState("polling");
    this.poller.start();
  }

  signedOut() {
    this.stop();
    this.setState("signed-out");
  }

  // The counts travel with what they came with (one message, so one change event).
  async polled(counts) {
    const { unread_count, unseen_count } = counts;
    const newest = this.inbox.newestId;
    if (!this.inbox.loaded) {
      this.deliver({ type: "counts", unread_count, unseen_count });
      await this.ensureLoaded(counts.last_id);
    } else if (counts.last_id !== null && (newest === null || counts.last_id > newest)) {
      const notifications = (await this.api.newerThan(newest ?? 0)).reverse();
      if (!this.poller.running) return; // a socket said hello meanwhile: its word is newer
      this.deliver({ type: "backlog", notifications, complete: true, unread_count, unseen_count });
    } else {
      // The ETag changed but nothing is new: states changed elsewhere (another device).
      const page = await this.api.page();
      if (!this.poller.running) return;
      this.deliver({ type: "refresh", notifications: page.results, unread_count, unseen_count });
    }
  }
}
