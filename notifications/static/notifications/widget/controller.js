// One widget: the inbox, its view, the link to the server (in the leader tab) and the relay
// between tabs, behind the small public API documented in docs/widget.md. The frames it applies
// are the socket protocol's, whose one source is notifications/protocol.py.

import { NotificationsApi } from "./api.js";
import { DesktopNotifications } from "./desktop.js";
import { readTranslations } from "./i18n.js";
import { Inbox } from "./inbox.js";
import { setNote, targetKey, threadKey } from "./item.js";
import { closeMenu } from "./menu.js";
import { errorText } from "./muted.js";
import { Preferences } from "./preferences.js";
import { WebPush } from "./push.js";
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
// The page's URL fragment that opens the preferences view: the link in emails
// (NOTIFICATIONS["PREFERENCES_PATH"], docs/email.md).
const PREFERENCES_FRAGMENT = "#notifications-preferences";

// The markup comes in a declarative shadow root (<template shadowrootmode="open">), attached by
// the HTML parser. Where it was not (a browser from before 2024, or markup added with innerHTML),
// attach it here.
function shadowRootOf(root) {
  if (root.shadowRoot) return root.shadowRoot;
  const template = root.querySelector(":scope > template[shadowrootmode]");
  const shadow = root.attachShadow({ mode: "open" });
  if (template) {
    shadow.append(template.content);
    template.remove();
  }
  return shadow;
}

// A page that declares no color-scheme gets the reader's (light or dark); one that does (the
// Django admin, and its theme toggle) gets its own, through inheritance (widget.css, .nw-ui).
function followColorScheme(root, ui) {
  const declared = getComputedStyle(root).colorScheme;
  ui.classList.toggle("nw-scheme-auto", !declared || declared === "normal");
}

export class NotificationsWidget {
  constructor(root, options = {}) {
    const data = root.dataset;
    this.root = root;
    this.shadow = shadowRootOf(root);
    followColorScheme(root, this.shadow.querySelector(".nw-ui"));
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
    // The threads (targets, `type:id`) this page muted: their items' menus offer to unmute.
    this.mutedThreads = new Set();
    this.view = new WidgetView(root, this.shadow, this.t, {
      onToggle: () => this.toggle(),
      onClose: (how) => this.close(how),
      onAction: (id, action) => this.change(id, action),
      onThread: (id, action) => this.thread(id, action),
      isMuted: (key) => this.mutedThreads.has(key),
      onFollow: (id) => this.followed(id),
      onMarkAll: () => this.markAllRead(),
      onLoadMore: () => this.loadMore(),
      onToastsOption: (enabled) => {
        this.toastsEnabled = enabled;
      },
      onDesktopOption: (enabled) => this.setDesktop(enabled),
      onLayout: () => this.toasts?.place(),
    });
    this.knownCategories = (data.categories ?? "")
      .split(",")
      .map((category) => category.trim())
      .filter(Boolean);
    this.preferences = new Preferences(this.shadow, {
      t: this.t,
      api: this.api,
      idPrefix: this.view.idPrefix,
      categories: () => [
        ...this.knownCategories,
        ...this.inbox.list().map((notification) => notification.category),
      ],
      onOpen: (open) => {
        this.view.setPreferencesOpen(open);
        if (!open) this.forgetPreferencesFragment();
      },
      onSaved: (answer, before) => this.preferencesSaved(answer, before),
      onUnmuted: (object) => {
        this.mutedThreads.delete(threadKey(object));
        this.render();
      },
    });
    this.toasts = new Toasts(this.shadow.querySelector(".nw-toasts"), {
      t: this.t,
      durationMs: options.toastMs,
      onFollow: (notification) => this.followed(notification.id),
      onFocusLost: () => this.view.bell.focus(),
      obstacle: () => this.view.panelBox(),
    });
    this.toasts.enabled = stored(TOASTS_KEY) !== "off";
    this.view.setToastsOption(this.toasts.enabled);
    this.push = new WebPush({
      api: this.api,
      key: data.pushKey,
      workerUrl: data.serviceWorker,
      fallbackTitle: this.t.get("pushFallbackTitle"),
    });
    this.desktop = new DesktopNotifications({ language: this.t.language, push: this.push });
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
    window.addEventListener("hashchange", () => this.followFragment());
    this.followFragment();
    return this;
  }

  // On a page opened from an email's link (or a link in the page) to #notifications-preferences:
  // the preferences view, the focus on its title, once the first page is in (the view offers
  // the categories of the notifications).
  async followFragment() {
    if (window.location.hash !== PREFERENCES_FRAGMENT) return;
    this.open();
    await this.ensureLoaded();
    if (this.view.isOpen) this.preferences.open({ focus: true });
  }

  // Closed, the view drops the fragment that opened it, so that following the same link again
  // (no hashchange for an unchanged fragment) opens it again. The page's history keeps its length.
  forgetPreferencesFragment() {
    if (window.location.hash !== PREFERENCES_FRAGMENT) return;
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, "", pathname + search);
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

  // Mutes the thread of a notification (its target): later notifications about it are not sent
  // to this user. Resolves to whether it worked.
  muteThread(id) {
    return this.thread(id, "mute");
  }

  unmuteThread(id) {
    return this.thread(id, "unmute");
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
    this.desktop.resume();
  }

  fromServer(message) {
    this.apply(message, { fromServer: true });
    if (this.role === "leader") this.tabs.post({ kind: "server", message });
  }

  fromTab(message) {
    switch (message.kind) {
      case "server":
        this.apply(message.message, { fromServer: true });
        break;
      case "changed-here":
        this.apply(message.message, { fromServer: false });
        this.sync?.nudge();
        break;
      case "preferences":
        this.preferences.update(message.answer);
        this.emit("preferences", preferencesDetail(message.answer));
        break;
      case "connection":
        if (this.role === "follower") this.setConnection(message.state);
        break;
      case "who-leads":
        if (this.role === "leader") this.tabs.post({ kind: "connection", state: this.state });
        break;
    }
  }

  // A change made in this tab through REST: shown at once here and in the other tabs. The
  // server's echo of it (a `changed` frame on the socket) then changes nothing, and says nothing.
  changedHere(message) {
    this.apply(message, { fromServer: false });
    this.tabs.post({ kind: "changed-here", message });
    this.sync?.nudge();
  }

  countsOf(answer) {
    return { unread_count: answer.unread_count, unseen_count: answer.unseen_count };
  }

  // Saved in this tab: said here and in the other tabs, if it changed anything.
  preferencesSaved(answer, before) {
    if (before && samePreferences(answer, before)) return;
    this.emit("preferences", preferencesDetail(answer));
    this.tabs.post({ kind: "preferences", answer });
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

  // Everything that happens to the inbox goes through here, whatever told this tab: the server
  // (the leader's socket or poller, relayed to the other tabs), or a change made through REST in
  // some tab of this browser. Each event says what really changed here, so a change heard twice
  // (made here, then echoed by the server) is told once.
  //
  // Counts: the server's (`fromServer`) come in order on one socket and are always the latest
  // word. A REST answer's are taken only when its change was news here: when the server's echo
  // came first, later frames may already have moved the counts on.
  apply(message, { fromServer }) {
    const before = [this.inbox.unreadCount, this.inbox.unseenCount];
    const events = []; // [ids, state] of each change this message made
    let fresh = [];
    switch (message.type) {
      case "notification":
        fresh = this.inbox.receive([message.notification]);
        break;
      case "backlog":
        fresh = this.inbox.receive(message.notifications);
        break;
      case "refresh": {
        const refreshed = this.inbox.refresh(message.notifications);
        fresh = refreshed.fresh;
        if (refreshed.changed.length) events.push([refreshed.changed, "refreshed"]);
        break;
      }
      case "changed": {
        const ids = this.changed(message);
        if (ids.length) events.push([ids, message.state]);
        break;
      }
    }
    if (fresh.length) events.unshift([fresh.map((notification) => notification.id), "created"]);
    // Unread ones a grouped notification replaced on the server (which sends no `changed`).
    const replaced = this.inbox.takeReplaced();
    if (fromServer || events.length) {
      this.inbox.setCounts(message.unread_count, message.unseen_count);
    }
    const countsChanged =
      before[0] !== this.inbox.unreadCount || before[1] !== this.inbox.unseenCount;
    this.render();
    for (const notification of fresh) this.emit("received", { notification });
    this.alert(fresh.filter((notification) => !notification.read_at));
    if (!events.length && (replaced.length || countsChanged)) events.push([[], null]);
    for (const [ids, state] of events) {
      this.emit("changed", {
        ids,
        state,
        replaced,
        unreadCount: this.inbox.unreadCount,
        unseenCount: this.inbox.unseenCount,
      });
    }
  }

  // An incoming `changed` (docs/websocket.md), whoever sent it: returns the ids it changed here,
  // leaving out those already in that state (the echo of a change this browser made).
  // One `changed` frame: its ids, or (with `up_to`) everything known here up to that id.
  changed(message) {
    const upTo = Number.isInteger(message.up_to) ? message.up_to : null;
    const ids = this.inbox.applyChange(message.ids ?? [], message.state, upTo);
    if (message.state === "unarchived" && ids.length) this.fetchBack(ids);
    return ids.sort((a, b) => a - b);
  }

  alert(unread) {
    if (!unread.length) return;
    if (document.visibilityState === "visible") {
      if (unread.length > MAX_TOASTS_AT_ONCE) this.toasts.summary(unread.length);
      else for (const notification of unread) this.toasts.show(notification);
      // No room for them beside the open panel (toasts.js): it lists them; say so.
      if (this.toasts.enabled && this.toasts.withheld) {
        this.view.announce(this.t.plural("newNotifications", unread.length));
      }
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
        this.apply({ type: "counts", ...answer.counts }, { fromServer: true });
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

  // Mute (`mute`) or unmute (`unmute`, or `undo` from the note) the thread of notification `id`:
  // its item says what happened, or why it did not, and the status region says it too.
  async thread(id, action) {
    const notification = this.inbox.items.get(id);
    const key = notification ? targetKey(notification) : null;
    if (!key) return false;
    const mute = action === "mute";
    const item = this.view.items.get(id);
    const menuButton = item?.querySelector(".nw-menu-button");
    if (action !== "undo") closeMenu(menuButton, { focusButton: true });
    try {
      if (mute) await this.api.mute(notification.target);
      else await this.api.unmute(notification.target);
    } catch (error) {
      if (error?.signedOut && error.status === 401) this.setConnection("signed-out");
      const text = errorText(error, this.t, mute ? "threadNotFound" : "actionFailed");
      if (item?.isConnected) setNote(item, { text, error: true });
      this.view.announce(text);
      console.warn("notifications:", error);
      return false;
    }
    if (mute) this.mutedThreads.add(key);
    else this.mutedThreads.delete(key);
    this.render();
    const text = this.t.get(mute ? "threadMuted" : "threadUnmuted");
    if (item?.isConnected) {
      const undo = item.querySelector(".nw-item-undo");
      const hadFocus = this.shadow.activeElement === undo;
      setNote(item, { text, undo: mute });
      if (hadFocus && !mute) (menuButton ?? item.querySelector("button")).focus();
    }
    this.view.announce(text);
    return true;
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
    else await this.desktop.disable();
    this.showDesktopOption();
    return this.desktop.enabled;
  }
}

// The channels besides in-app, as the preferences' answer names them.
const CHANNELS = ["email", "push"];

// The event's detail: the in-app lists, and each channel the site sends (`email_available`,
// `push_available`).
function preferencesDetail(answer) {
  const detail = {
    mutedCategories: [...answer.muted_categories],
    mutedLevels: [...answer.muted_levels],
  };
  for (const name of CHANNELS) {
    const channel = answer.channels?.[name];
    if (channel && answer[`${name}_available`]) {
      detail[name] = {
        enabled: channel.enabled,
        mutedCategories: [...channel.muted_categories],
        mutedLevels: [...channel.muted_levels],
      };
    }
  }
  return detail;
}

function samePreferences(a, b) {
  const same = (x = [], y = []) => [...x].sort().join("\n") === [...y].sort().join("\n");
  const sameChannel = (name) => {
    const [x, y] = [a.channels?.[name] ?? {}, b.channels?.[name] ?? {}];
    return (
      x.enabled === y.enabled &&
      same(x.muted_categories, y.muted_categories) &&
      same(x.muted_levels, y.muted_levels)
    );
  };
  return (
    same(a.muted_categories, b.muted_categories) &&
    same(a.muted_levels, b.muted_levels) &&
    CHANNELS.every(sameChannel)
  );
}
