// Polls unread-count the way docs/api.md asks: If-None-Match with the last ETag (a 304 costs the
// server nothing), X-Poll-Interval obeyed, backoff with jitter on errors.

import { Backoff } from "./backoff.js";

export class Poller {
  constructor({ api, onCounts, onSignedOut, random = Math.random }) {
    this.api = api;
    this.onCounts = onCounts;
    this.onSignedOut = onSignedOut;
    this.random = random;
    this.backoff = new Backoff({ random });
    this.etag = null;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
  }

  // Poll at once (after a change made here, or when the browser comes back online); while a poll
  // is under way, right after it: its answer may predate the change.
  now() {
    if (!this.running) return;
    if (this.busy) this.again = true;
    else this.schedule(0);
  }

  schedule(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), delayMs);
  }

  async poll() {
    if (!this.running) return;
    this.busy = true;
    let delayMs;
    try {
      const answer = await this.api.unreadCount(this.etag);
      // Stopped while it was asked (a socket said hello): the socket's word is newer.
      if (!this.running) return;
      if (answer.counts) {
        this.etag = answer.etag;
        await this.onCounts(answer.counts);
      }
      this.backoff.reset();
      // A little jitter keeps many clients told the same interval from polling in step.
      delayMs = answer.intervalSeconds * 1000 * (0.9 + 0.2 * this.random());
    } catch (error) {
      if (error.signedOut) {
        this.stop();
        this.onSignedOut();
        return;
      }
      delayMs = Math.max(1000, this.backoff.next());
    } finally {
      this.busy = false;
    }
    if (this.running) this.schedule(this.again ? 0 : delayMs);
    this.again = false;
  }
}
