// The bell and the panel: the WAI-ARIA disclosure pattern (a button with aria-expanded that
// shows and hides the panel right after it), kept in step with the inbox without rebuilding
// what is on screen, so that focus never jumps. The markup is in the widget's shadow root
// (`shadow`); `root` is the element the page sees.

import { renderItem, updateItem, updateTime } from "./item.js";
import { bindMenus, closeMenu } from "./menu.js";

const BADGE_MAX = 99;
const EDGE = 8; // px between the open panel and the edges of the viewport
const GAP = 4; // px between the bell and the panel
const MIN_ROOM = 240; // px: the panel's least height, even when the bell is low on the screen
// Under this width (a phone) the panel is a sheet across the screen.
const NARROW = window.matchMedia("(max-width: 30em)");

export class WidgetView {
  constructor(root, shadow, t, handlers) {
    this.root = root;
    this.shadow = shadow;
    this.t = t;
    this.handlers = handlers;
    this.idPrefix = root.id || "nw";
    const find = (selector) => shadow.querySelector(selector);
    this.ui = find(".nw-ui");
    this.bell = find(".nw-bell");
    this.bellLabel = find(".nw-bell-label");
    this.badge = find(".nw-badge");
    this.offline = find(".nw-bell-offline");
    this.panel = find(".nw-panel");
    this.title = find(".nw-panel-title");
    this.markAll = find(".nw-mark-all");
    this.connection = find(".nw-connection");
    this.connectionText = find(".nw-connection-text");
    this.signIn = find(".nw-sign-in");
    this.scroller = find(".nw-scroll");
    this.list = find(".nw-list");
    this.message = find(".nw-status-message");
    this.more = find(".nw-more");
    this.announcer = find(".nw-announcer");
    this.toastsOption = find(".nw-toasts-option");
    this.desktopOption = find(".nw-desktop-option");
    this.desktopLabel = find(".nw-desktop");
    this.desktopBlocked = find(".nw-desktop-blocked");
    this.items = new Map(); // id -> <li>
    this.bind();
  }

  bind() {
    this.bell.addEventListener("click", () => this.handlers.onToggle());
    this.markAll.addEventListener("click", () => this.handlers.onMarkAll());
    this.more.addEventListener("click", () => this.handlers.onLoadMore());
    this.toastsOption.addEventListener("change", () =>
      this.handlers.onToastsOption(this.toastsOption.checked),
    );
    this.desktopOption.addEventListener("change", () =>
      this.handlers.onDesktopOption(this.desktopOption.checked),
    );
    this.list.addEventListener("click", (event) => this.onListClick(event));
    bindMenus(this.list);
    // Listened to in the shadow root, where targets are the widget's own elements (outside it,
    // the page sees them all as the root element).
    this.shadow.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isOpen && this.panelOrBellHas(event.target)) {
        event.preventDefault();
        this.handlers.onClose({ focusBell: true });
      }
    });
    document.addEventListener("pointerdown", (event) => {
      if (this.isOpen && !event.composedPath().includes(this.root))
        this.handlers.onClose({ focusBell: false });
    });
    this.shadow.addEventListener("focusout", (event) => {
      if (this.isOpen && event.relatedTarget && !this.shadow.contains(event.relatedTarget)) {
        this.handlers.onClose({ focusBell: false });
      }
    });
    // The open panel stays inside the viewport when the window or the page's layout changes, and
    // the toasts out of its way when it changes size.
    window.addEventListener("resize", () => this.place());
    if ("ResizeObserver" in window) {
      new ResizeObserver(() => this.place()).observe(document.documentElement);
      new ResizeObserver(() => this.handlers.onLayout()).observe(this.panel);
    }
    // More is loaded when the end of the list scrolls into view (the button serves keyboards).
    if ("IntersectionObserver" in window) {
      this.observer = new IntersectionObserver(
        (entries) => entries.some((entry) => entry.isIntersecting) && this.handlers.onLoadMore(),
        { root: this.scroller },
      );
      this.observer.observe(this.more);
    }
  }

  panelOrBellHas(node) {
    return this.panel.contains(node) || this.bell.contains(node);
  }

  onListClick(event) {
    const item = event.target.closest(".nw-item");
    if (!item) return;
    const id = Number(item.dataset.id);
    const thread = event.target.closest("button[data-thread]");
    if (thread) {
      this.handlers.onThread(id, thread.dataset.thread);
      return;
    }
    const action = event.target.closest("button[data-action]");
    if (action) this.handlers.onAction(id, action.dataset.action);
    else if (event.target.closest(".nw-item-link")) this.handlers.onFollow(id);
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  // The preferences view takes the list's place while it is open.
  setPreferencesOpen(open) {
    closeMenu();
    this.scroller.hidden = open;
    this.panel.classList.toggle("nw-prefs-open", open);
  }

  setOpen(open, { focusBell = false } = {}) {
    if (!open) closeMenu();
    this.panel.hidden = !open;
    this.bell.setAttribute("aria-expanded", String(open));
    this.place();
    if (!open && focusBell) this.bell.focus();
  }

  // The open panel's box in the viewport, or null.
  panelBox() {
    return this.isOpen ? this.panel.getBoundingClientRect() : null;
  }

  // Puts the open panel under the bell, its end aligned with the bell's where it fits, moved in
  // where it would leave the viewport; on a narrow screen it spans the width (a sheet), as tall
  // as the screen below the bell allows. Lengths reach the stylesheet as custom properties (set
  // through the CSSOM, which a Content-Security-Policy without 'unsafe-inline' allows).
  place() {
    if (this.isOpen) {
      const panel = this.panel;
      panel.classList.remove("nw-placed", "nw-sheet");
      const anchor = this.ui.getBoundingClientRect();
      const viewport = document.documentElement.clientWidth;
      const sheet = NARROW.matches;
      const natural = panel.getBoundingClientRect().width;
      const width = sheet ? viewport - 2 * EDGE : Math.min(natural, viewport - 2 * EDGE);
      const rtl = getComputedStyle(panel).direction === "rtl";
      const wanted = rtl ? anchor.left : anchor.right - width;
      const left = Math.max(EDGE, Math.min(wanted, viewport - EDGE - width));
      const room = Math.max(window.innerHeight - anchor.bottom - GAP - EDGE, MIN_ROOM);
      panel.style.setProperty("--nw-panel-left", `${left - anchor.left}px`);
      panel.style.setProperty("--nw-panel-inline-size", `${width}px`);
      panel.style.setProperty("--nw-panel-room", `${room}px`);
      panel.classList.add("nw-placed");
      panel.classList.toggle("nw-sheet", sheet);
    }
    this.handlers.onLayout();
  }

  setCounts(unread, unseen, badgeKind) {
    const shown = badgeKind === "unseen" ? unseen : unread;
    this.badge.hidden = shown === 0;
    this.badge.textContent =
      shown > BADGE_MAX ? `${this.t.number(BADGE_MAX)}+` : this.t.number(shown);
    const key = badgeKind === "unseen" ? "bellUnseen" : "bellUnread";
    this.bellLabel.textContent =
      shown === 0 ? this.t.get("notifications") : this.t.plural(key, shown);
    this.markAll.disabled = unread === 0;
  }

  setConnection(state, { announce }) {
    const text = this.t.state(state);
    this.root.dataset.connection = state;
    this.bell.dataset.connection = state;
    this.connection.dataset.connection = state;
    this.connectionText.textContent = text;
    this.offline.hidden = state === "connected" || state === "connecting";
    this.signIn.hidden = state !== "signed-out";
    if (announce) this.announce(text);
  }

  announce(text) {
    // Emptied first, so that the same words said twice are announced twice.
    this.announcer.textContent = "";
    setTimeout(() => {
      this.announcer.textContent = text;
    }, 100);
  }

  // Brings the list in line with `notifications` (newest first): new items are inserted in
  // place and gone ones removed, while the rest (and the focus in them) stay where they are.
  render(notifications, { loaded, hasMore, loadFailed }) {
    const wanted = new Map(notifications.map((n) => [n.id, n]));
    for (const [id, item] of this.items) {
      if (!wanted.has(id)) this.removeItem(id, item);
    }
    let previous = null;
    for (const notification of notifications) {
      let item = this.items.get(notification.id);
      if (item) {
        updateItem(item, notification, this.t, this.handlers.isMuted);
      } else {
        item = renderItem(notification, {
          t: this.t,
          idPrefix: this.idPrefix,
          isMuted: this.handlers.isMuted,
        });
        this.items.set(notification.id, item);
        if (previous) previous.after(item);
        else this.list.prepend(item);
      }
      previous = item;
    }
    this.more.hidden = !hasMore;
    let message = "";
    if (loadFailed) message = this.t.get("loadFailed");
    else if (!loaded) message = this.t.get("loading");
    else if (!notifications.length) message = this.t.get("empty");
    if (this.message.textContent !== message) this.message.textContent = message;
    this.message.hidden = !message;
  }

  // Focus in a removed item moves to the same control of its neighbour (or to the panel's
  // title), never to <body>.
  removeItem(id, item) {
    const active = this.shadow.activeElement;
    const focused = item.contains(active) ? active : null;
    const neighbour = item.nextElementSibling ?? item.previousElementSibling;
    item.remove();
    this.items.delete(id);
    if (!focused) return;
    const same = [".nw-action-archive", ".nw-action-toggle", ".nw-menu-button"].find(
      (control) => focused.matches(control),
    );
    const target =
      neighbour?.querySelector(same ?? "a, button") ?? neighbour?.querySelector("button");
    (target ?? this.title).focus();
  }

  refreshTimes() {
    for (const item of this.items.values()) updateTime(item, this.t);
  }

  setToastsOption(enabled) {
    this.toastsOption.checked = enabled;
  }

  // Blocked, the switch is disabled and a line under it says why (a tooltip would reach neither
  // a keyboard nor a touch screen); it describes the switch only then.
  setDesktopOption({ supported, enabled, blocked }) {
    this.desktopLabel.hidden = !supported;
    this.desktopOption.checked = enabled;
    this.desktopOption.disabled = blocked;
    this.desktopBlocked.hidden = !blocked;
    this.desktopBlocked.textContent = blocked ? this.t.get("desktopBlocked") : "";
    if (blocked) this.desktopOption.setAttribute("aria-describedby", this.desktopBlocked.id);
    else this.desktopOption.removeAttribute("aria-describedby");
  }
}
