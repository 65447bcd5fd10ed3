// The tabs of one browser act as one client. A leader tab, elected through the Web Locks API,
// holds the only socket and relays what it hears over a BroadcastChannel; the others follow.
// When the leader goes, the lock passes to a waiting tab, which connects and resumes. Without
// Web Locks or BroadcastChannel every tab leads itself ("solo"): a socket each.

export class Tabs {
  constructor(name, { onMessage }) {
    this.name = name;
    this.id = crypto.randomUUID?.() ?? `${Date.now()}-${Math.random()}`;
    this.channel = "BroadcastChannel" in window ? new BroadcastChannel(name) : null;
    this.visibleTabs = new Set();
    this.channel?.addEventListener("message", (event) => this.received(event.data, onMessage));
    this.canShareSocket = Boolean(this.channel && navigator.locks?.request);
    document.addEventListener("visibilitychange", () => this.postVisibility());
    window.addEventListener("pagehide", () => this.post({ kind: "visibility", visible: false }));
    this.postVisibility({ ask: true });
  }

  post(message) {
    this.channel?.postMessage({ ...message, from: this.id });
  }

  received(message, onMessage) {
    if (!message || message.from === this.id) return;
    if (message.kind === "visibility") {
      if (message.visible) this.visibleTabs.add(message.from);
      else this.visibleTabs.delete(message.from);
      if (message.ask) this.postVisibility();
      return;
    }
    onMessage(message);
  }

  // `ask`: a new tab asks the others to say whether they are visible too.
  postVisibility({ ask = false } = {}) {
    this.post({ kind: "visibility", visible: document.visibilityState === "visible", ask });
  }

  // Whether the user looks at any tab of ours (this one included).
  anyVisible() {
    return document.visibilityState === "visible" || this.visibleTabs.size > 0;
  }

  // Calls onLead(role) once this tab leads: "leader" when it won the lock, "solo" at once when
  // tabs cannot share a socket here.
  lead(onLead) {
    if (!this.canShareSocket) {
      onLead("solo");
      return;
    }
    navigator.locks
      .request(this.name, () => {
        onLead("leader");
        // Held until the tab goes away (or release() is called): the browser then frees it.
        return new Promise((resolve) => {
          this.release = resolve;
        });
      })
      .catch(() => onLead("solo"));
  }

  close() {
    this.release?.();
    this.channel?.close();
  }
}
