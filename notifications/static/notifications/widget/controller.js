// One widget: the inbox, its view, the link to the server (in the leader tab) and the relay
// between tabs, behind the small public API documented in docs/widget.md.

import { NotificationsApi } from "./api.js";
import { DesktopNotifications } from "./desktop.js";
import { readTranslations } from "./i18n.js";
import { Inbox } from "./inbox.js";
import { Preferences } from "./preferences.js";
import { safeUrl } from "./safe-url.js";
import { socketUrl } from "./socket.js";
import { store, stored } from "./storage.js";
import { Sync } from "./sync.js";
import { Tabs } from "./tabs.js";
import { Toasts } from "./toasts.js";
import { WidgetView } from "./view.js";

const TOASTS_KEY = "notifications-widget:toasts";
const MAX_TOASTS_AT_ONCE = 3; // more arriving together make one summary toast
const ACTION_STATES = { read: "read", unread: "unread", archive: "archived" };

export class NotificationsWidget {
  constructor(root, options = {}) {
    const data = root.dataset;
    this.root = root;
    this.options = options;
    this.t = readTranslations(root);
    this.badge = data.badge === "unseen" ? "unseen" : "unread";
    this.state = "connecting";
    this.role = "follower";
    this.loadFailed = false;
    this.api = new NotificationsApi({
      baseUrl: data.apiUrl,
      csrfToken: data.csrfToken,
      csrfCookie: data.csrfCookie,
    });
    this.socketUrl = socketUrl(data.socketUrl || "/ws/notifications/");
    this.inbox = new Inbox();
    this.view = new WidgetView(root, this.t, {
      onToggle: () => this.toggle(),
      onClose: (how) => this.close(how),
      onAction: (id, action) => this.change(id, action),
      onFollow: (id) => this.followed(id),
      onMarkAll: () => this.markAllRead(),
      onLoadMore: () => this.loadMore(),
      onToastsOption: (enabled) => {
        this.toastsEnabled = enabled;
      },
      onDesktopOption: (enabled) => this.setDesktop(enabled),
    });
    this.knownCategories = (data.categories ?? "")
      .split(",")
      .map((category) => category.trim())
      .filter(Boolean);
    this.preferences = new Preferences(root, {
      t: this.t,
      api: this.api,
      idPrefix: this.view.idPrefix,
      categories: () => [
        ...this.knownCategories,
        ...this.inbox.list().map((notification) => notification.category),
      ],
      onOpen: (open) => this.view.setPreferencesOpen(open),
      onSaved: (answer) =>
        this.emit("preferences", {
          mutedCategories: [...answer.muted_categories],
          mutedLevels: [...answer.muted_levels],
        }),
    });
    this.toasts = new Toasts(root.querySelector(".nw-toasts"), {
      t: this.t,
      durationMs: options.toastMs,
      onFollow: (notification) => this.followed(notification.id),
      onFocusLost: () => this.view.bell.focus(),
    });
    this.toasts.enabled = stored(TOASTS_KEY) !== "off";
    this.view.setToastsOption(this.toasts.enabled);
    this.desktop = new DesktopNotifications({ language: this.t.language });
    this.showDesktopOption();
    this.tabs = new Tabs(`notifications-widget:${data.userKey ?? ""}`, {
      onMessage: (message) => this.fromTab(message),
    });
  }

  start() {
    this.root.dataset.role = this.role;
    this.view.setConnection(this.state, { announce: false });
    this.view.setCounts(0, 0, this.badge);
    this.render();
    this.ensureLoaded();
    this.tabs.post({ kind: "who-leads" });
    this.tabs.lead((role) => this.lead(role));
    this.clock = setInterval(() => this.view.refreshTimes(), 30_000);
    return this;
  }

  // --- public API (docs/widget.md) -------------------------------------------------------

  get unreadCount() {
    return this.inbox.unreadCount;
  }

  get unseenCount() {
    return this.inbox.unseenCount;
  }

  get notifications() {
    return this.inbox.list().map((notification) => structuredClone(notification));
  }

  get isOpen() {
    return this.view.isOpen;
  }

  get toastsEnabled() {
    return this.toasts.enabled;
  }

  set toastsEnabled(enabled) {
    this.toasts.enabled = Boolean(enabled);
    if (!enabled) this.toasts.clear();
    store(TOASTS_KEY, enabled ? null : "off");
    this.view.setToastsOption(this.toasts.enabled);
  }

  open() {
    if (this.view.isOpen) return;
    this.view.setOpen(true);
    if (!this.inbox.loaded) this.ensureLoaded();
    this.markSeen();
  }

  close({ focusBell = false } = {}) {
    this.preferences.close();
    this.view.setOpen(false, { focusBell });
  }

  get preferencesOpen() {
    return this.preferences.isOpen;
  }

  // The preferences view, in the open panel.
  openPreferences() {
    this.open();
    this.preferences.open();
  }

  closePreferences() {
    this.preferences.close();
  }

  toggle() {
    if (this.view.isOpen) this.close();
    else this.open();
  }

  markRead(id) {
    return this.change(id, "read");
  }

  markUnread(id) {
    return this.change(id, "unread");
  }

  archive(id) {
    return this.change(id, "archive");
  }

  // Race-safe: only what this tab has received is marked read; what arrives meanwhile stays
  // unread.
  async markAllRead() {
    try {
      const answer = await this.api.readAll(this.inbox.newestId);
      this.changedHere({
        type: "changed",
        ids: answer.ids,
        up_to: answer.up_to,
        state: "read",
        ...this.countsOf(answer),
      });
    } catch (error) {
      this.failed(error);
    }
  }

  async enableDesktopNotifications() {
    return this.setDesktop(true);
  }

  // --- the leader's link, and the other tabs -----------------------------------------------

  lead(role) {
    this.role = role;
    this.root.dataset.role = role;
    this.sync = new Sync({
      api: this.api,
      url: this.socketUrl,
      inbox: this.inbox,
      deliver: (message) => this.fromServer(message),
      ensureLoaded: (lastId) => this.ensureLoaded(lastId),
      setState: (state) => this.setConnection(state),
      heartbeatMs: this.options.heartbeatMs,
      timeoutMs: this.options.heartbeatTimeoutMs,
    });
    this.sync.start();
  }

  fromServer(message) {
    this.apply(message);
    if (this.role === "leader") this.tabs.post({ kind: "server", message });
  }

  fromTab(message) {
    switch (message.kind) {
      case "server":
        this.apply(message.message);
        break;
      case "changed-here":
        this.apply(message.message);
        this.sync?.nudge();
        break;
      case "connection":
        if (this.role === "follower") this.setConnection(message.state);
        break;
      case "who-leads":
        if (this.role === "leader") this.tabs.post({ kind: "connection", state: this.state });
        break;
    }
  }

  // A change made in this tab through REST: shown at once here and in the other tabs. While a
  // socket is live it brings the authoritative counts itself, and REST's could be older.
  changedHere(message) {
    this.apply(message);
    this.tabs.post({ kind: "changed-here", message });
    this.sync?.nudge();
  }

  countsOf(answer) {
    if (this.state === "connected") return {};
    return { unread_count: answer.unread_count, unseen_count: answer.unseen_count };
  }

  setConnection(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.view.setConnection(state, { announce: previous !== "connecting" });
    this.emit("connection", { state, previous });
    if (this.role === "leader") this.tabs.post({ kind: "connection", state });
  }

  // --- applying what happened -----------------------------------------------------------------

  apply(message) {
    let ids = [];
    let state = null;
    let fresh = [];
    if (message.type === "notification") {
      fresh = this.inbox.receive([message.notification]);
    } else if (message.type === "backlog") {
      fresh = this.inbox.receive(message.notifications);
    } else if (message.type === "refresh") {
      fresh = this.inbox.refresh(message.notifications);
      state = "refreshed";
    } else if (message.type === "changed") {
      state = message.state;
      const touched = this.inbox.applyChange(message.ids, state, message.up_to ?? null);
      // A change up to an id names what it changed in this tab's list: its `ids` may be empty.
      ids = Number.isInteger(message.up_to)
        ? [...new Set([...message.ids, ...touched])].sort((a, b) => a - b)
        : message.ids;
      if (state === "unarchived") this.fetchBack(ids);
    }
    if (fresh.length) {
      ids = fresh.map((notification) => notification.id);
      state = "created";
    }
    // Unread ones a grouped notification replaced on the server (which sends no `changed`).
    const replaced = this.inbox.takeReplaced();
    const countsChanged = this.inbox.setCounts(message.unread_count, message.unseen_count);
    this.render();
    for (const notification of fresh) this.emit("received", { notification });
    this.alert(fresh.filter((notification) => !notification.read_at));
    if (ids.length || replaced.length || countsChanged || state === "refreshed") {
      this.emit("changed", {
        ids,
        state: ids.length || state === "refreshed" ? state : null,
        replaced,
        unreadCount: this.inbox.unreadCount,
        unseenCount: this.inbox.unseenCount,
      });
    }
  }

  alert(unread) {
    if (!unread.length) return;
    if (document.visibilityState === "visible") {
      if (unread.length > MAX_TOASTS_AT_ONCE) this.toasts.summary(unread.length);
      else for (const notification of unread) this.toasts.show(notification);
    } else if (this.role !== "follower" && !this.tabs.anyVisible()) {
      for (const notification of unread.slice(-MAX_TOASTS_AT_ONCE)) {
        this.desktop.show(notification, (shown) => this.follow(shown));
      }
    }
  }

  render() {
    this.view.setCounts(this.inbox.unreadCount, this.inbox.unseenCount, this.badge);
    this.view.render(this.inbox.list(), {
      loaded: this.inbox.loaded,
      hasMore: this.inbox.hasMore,
      loadFailed: this.loadFailed,
    });
  }

  emit(name, detail) {
    this.root.dispatchEvent(new CustomEvent(`notifications:${name}`, { detail, bubbles: true }));
  }

  // --- REST ------------------------------------------------------------------------------------

  // The first page, once; `lastId` (from hello or a poll) saves asking for the counts.
  ensureLoaded(lastId) {
    if (this.inbox.loaded) return Promise.resolve(true);
    this.loading ??= this.loadFirstPage(lastId).finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  async loadFirstPage(lastId) {
    try {
      if (lastId === undefined) {
        // Counts first: their last_id is then no newer than the page, whose newest id may be
        // older still when the newest were archived.
        const answer = await this.api.unreadCount();
        this.apply({ type: "counts", ...answer.counts });
        lastId = answer.counts.last_id;
      }
      const page = await this.api.page();
      this.inbox.addPage(page.results, page.next);
      this.inbox.takeReplaced(); // the first page: no event
      this.inbox.raiseNewest(lastId);
      this.loadFailed = false;
      return true;
    } catch (error) {
      if (error.signedOut) this.setConnection("signed-out");
      this.loadFailed = true;
      return false;
    } finally {
      this.render();
    }
  }

  async loadMore() {
    if (!this.inbox.hasMore || this.loadingMore) return;
    this.loadingMore = true;
    try {
      const page = await this.api.page(this.inbox.nextPage);
      this.inbox.addPage(page.results, page.next);
      this.inbox.takeReplaced();
      this.render();
    } catch (error) {
      this.failed(error);
    } finally {
      this.loadingMore = false;
    }
  }

  async change(id, action) {
    const state = ACTION_STATES[action];
    if (!state) throw new Error(`unknown action ${action}`);
    try {
      await this.api.change(id, action);
      this.changedHere({ type: "changed", ids: [id], state });
    } catch (error) {
      this.failed(error);
    }
  }

  async markSeen() {
    if (!this.inbox.unseenCount || this.inbox.newestId === null) return;
    try {
      const answer = await this.api.seen(this.inbox.newestId);
      this.changedHere({
        type: "changed",
        ids: answer.ids,
        up_to: answer.up_to,
        state: "seen",
        ...this.countsOf(answer),
      });
    } catch {
      // The badge stays as it is: nothing the user asked for failed.
    }
  }

  // A click on a notification's link: the browser follows it; the read survives the unload.
  followed(id) {
    if (this.inbox.items.get(id)?.read_at) return;
    this.api.change(id, "read", { keepalive: true }).catch(() => {});
    this.changedHere({ type: "changed", ids: [id], state: "read" });
  }

  follow(notification) {
    this.followed(notification.id);
    const href = safeUrl(notification.url);
    if (href) window.location.assign(href);
  }

  async fetchBack(ids) {
    for (const id of ids.slice(0, 20)) {
      if (!this.inbox.inLoadedRange(id)) continue;
      try {
        this.inbox.refresh([await this.api.json(this.api.url(`${id}/`))]);
        this.inbox.takeReplaced();
      } catch {
        // gone again meanwhile
      }
    }
    this.render();
  }

  failed(error) {
    if (error?.signedOut && error.status === 401) this.setConnection("signed-out");
    this.view.announce(this.t.get("actionFailed"));
    console.warn("notifications:", error);
  }

  showDesktopOption() {
    this.view.setDesktopOption({
      supported: this.desktop.supported,
      enabled: this.desktop.enabled,
      blocked: this.desktop.blocked,
    });
  }

  async setDesktop(enabled) {
    if (enabled) await this.desktop.enable();
    else this.desktop.disable();
    this.showDesktopOption();
    return this.desktop.enabled;
  }
}
