// Pop-ups for new notifications, in a polite live region. They go away by themselves, but never
// while the pointer or the focus is on them (WCAG 2.2.1), and can be switched off altogether.
// Their motion is in the stylesheet, which drops it under prefers-reduced-motion. They never
// cover the open panel (`place`).

import { icon } from "./icons.js";
import { actorsText, levelOf, titleContent } from "./item.js";

const MAX_VISIBLE = 3;
const EDGE = 16; // px: the stack's distance from the panel and the viewport's edges

function overlap(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

export class Toasts {
  // `obstacle()`: the open panel's box in the viewport, or null.
  constructor(region, { t, onFollow, onFocusLost, obstacle = () => null, durationMs = 6000 }) {
    this.region = region;
    this.t = t;
    this.onFollow = onFollow;
    this.onFocusLost = onFocusLost;
    this.obstacle = obstacle;
    this.durationMs = durationMs;
    this.enabled = true;
    this.paused = false;
    this.withheld = false; // no room beside the open panel: toasts wait until it closes
    this.timers = new Map(); // toast -> {timer, remainingMs, startedAt}
    region.addEventListener("pointerenter", () => this.pause());
    region.addEventListener("pointerleave", () => this.resume());
    region.addEventListener("focusin", () => this.pause());
    region.addEventListener("focusout", (event) => {
      if (!region.contains(event.relatedTarget)) this.resume();
    });
    region.addEventListener("keydown", (event) => {
      const toast = event.target.closest(".nw-toast");
      if (event.key === "Escape" && toast) {
        event.preventDefault();
        this.dismiss(toast);
      }
    });
  }

  show(notification) {
    if (!this.enabled) return;
    const toast = this.toast(levelOf(notification));
    const title = document.createElement("p");
    title.className = "nw-toast-title";
    title.append(...titleContent(notification, this.t, "nw-toast-link"));
    title.querySelector("a")?.addEventListener("click", () => this.onFollow(notification));
    toast.text.append(title);
    if (notification.body) {
      const body = document.createElement("p");
      body.className = "nw-toast-body";
      body.textContent = notification.body;
      toast.text.append(body);
    }
    if (notification.group_count > 1) {
      const group = document.createElement("p");
      group.className = "nw-toast-meta";
      group.textContent = actorsText(notification, this.t);
      toast.text.append(group);
    }
    this.add(toast.node);
  }

  summary(count) {
    if (!this.enabled) return;
    const toast = this.toast("info");
    const title = document.createElement("p");
    title.className = "nw-toast-title";
    title.textContent = this.t.plural("newNotifications", count);
    toast.text.append(title);
    this.add(toast.node);
  }

  toast(level) {
    const node = document.createElement("div");
    node.className = `nw-toast nw-level-${level}`;
    const text = document.createElement("div");
    text.className = "nw-toast-text";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "nw-toast-close";
    close.setAttribute("aria-label", this.t.get("dismiss"));
    close.append(icon("close", "nw-icon"));
    close.addEventListener("click", () => this.dismiss(node));
    node.append(icon(level, `nw-icon nw-level-icon nw-level-${level}`), text, close);
    return { node, text };
  }

  add(node) {
    this.region.append(node);
    const toasts = this.region.querySelectorAll(".nw-toast");
    for (const old of [...toasts].slice(0, Math.max(0, toasts.length - MAX_VISIBLE)))
      this.dismiss(old);
    this.timers.set(node, { remainingMs: this.durationMs });
    if (!this.paused) this.startTimer(node);
    this.place();
  }

  // Keeps the stack off the open panel: in its corner where they do not meet, else beside the
  // panel where the screen has room. Where it has none (a phone, whose panel spans the width) the
  // toasts go and new ones are withheld while the panel is open: it lists them at its top.
  // Called whenever a toast comes or the panel opens, closes, moves or changes size; it runs
  // before the browser paints, so a toast is never seen on the panel.
  place() {
    const region = this.region;
    region.classList.remove("nw-moved");
    const panel = this.obstacle();
    this.withheld = false;
    if (!panel || !this.timers.size) return;
    const stack = region.getBoundingClientRect();
    if (!overlap(stack, panel)) return;
    const viewport = document.documentElement.clientWidth;
    const left = [panel.left - EDGE - stack.width, panel.right + EDGE].find(
      (x) => x >= EDGE && x + stack.width <= viewport - EDGE,
    );
    if (left !== undefined) {
      region.style.setProperty("--nw-toasts-left", `${left}px`);
      region.classList.add("nw-moved");
      return;
    }
    this.clear();
    this.withheld = true;
  }

  startTimer(node) {
    const state = this.timers.get(node);
    if (!state) return;
    state.startedAt = performance.now();
    state.timer = setTimeout(() => this.dismiss(node), state.remainingMs);
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    for (const state of this.timers.values()) {
      clearTimeout(state.timer);
      state.remainingMs = Math.max(1000, state.remainingMs - (performance.now() - state.startedAt));
    }
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    for (const node of this.timers.keys()) this.startTimer(node);
  }

  dismiss(node) {
    const state = this.timers.get(node);
    if (state) clearTimeout(state.timer);
    this.timers.delete(node);
    const hadFocus = node.contains(node.getRootNode().activeElement); // the shadow root's
    node.remove();
    if (!this.timers.size) this.paused = false;
    if (hadFocus) this.onFocusLost(); // rather than leave the focus on <body>
  }

  clear() {
    for (const node of [...this.timers.keys()]) this.dismiss(node);
  }
}
