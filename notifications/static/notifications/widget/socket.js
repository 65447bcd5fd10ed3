// One WebSocket connection that proves it is alive: a ping every `heartbeatMs`, and a socket that
// has said nothing for `timeoutMs` after a ping is taken for dead (a dropped network often sends
// no close at all). Reconnecting is the caller's business.
//
// `ping` and `pong` are notifications/protocol.py's, the socket protocol's one source
// (tests/test_protocol.py checks them); HEARTBEAT_TIMEOUT is the widget's own, not the server's.

export const HEARTBEAT_TIMEOUT = 4000; // our own close code for a socket that stopped answering

export function socketUrl(path, here = window.location) {
  const url = new URL(path, here.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  return url.href;
}

export class HeartbeatSocket {
  constructor(url, { onMessage, onClose, heartbeatMs = 25000, timeoutMs = 10000 }) {
    this.onMessage = onMessage;
    this.onClose = onClose;
    this.heartbeatMs = heartbeatMs;
    this.timeoutMs = timeoutMs;
    this.pings = 0;
    this.closed = false;
    try {
      this.socket = new WebSocket(url);
    } catch {
      // A URL the browser refuses: report it like any failed connection, after this call.
      setTimeout(() => this.finish(1006), 0);
      return;
    }
    this.socket.addEventListener("open", () => this.startHeartbeat());
    this.socket.addEventListener("message", (event) => this.received(event));
    this.socket.addEventListener("close", (event) => this.finish(event.code));
  }

  get open() {
    return !this.closed && this.socket?.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  close(code = 1000) {
    this.finish(code, { notify: false });
  }

  received(event) {
    clearTimeout(this.deadline); // anything the server says proves it is there
    this.deadline = null;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message?.type !== "pong") this.onMessage(message);
  }

  startHeartbeat() {
    this.beat = setInterval(() => {
      this.pings += 1;
      if (!this.send({ type: "ping", id: this.pings })) return;
      // Counted from the oldest unanswered ping.
      this.deadline ??= setTimeout(() => this.finish(HEARTBEAT_TIMEOUT), this.timeoutMs);
    }, this.heartbeatMs);
  }

  // Without waiting for the closing handshake: a dead network may never complete it.
  finish(code, { notify = true } = {}) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.beat);
    clearTimeout(this.deadline);
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) {
      try {
        this.socket.close(code >= 3000 && code < 5000 ? code : 1000);
      } catch {
        // already closing
      }
    }
    if (notify) this.onClose(code);
  }
}
