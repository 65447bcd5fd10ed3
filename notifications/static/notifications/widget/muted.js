// The preferences view's "Muted threads": the objects the user muted (`GET subscriptions/
// ?muted=true`, newest first, read again each time the view opens), a page at a time ("Show
// more" follows the cursor), each with an "Unmute" button (`PATCH subscriptions/<id>/`
// `{"muted": false}`: 200 or 204, the row goes). They act at once: Save is the switches' only.

import { element } from "./dom.js";

// What a row shows: the object's str(), or its type and id when it has none (it is gone).
export function objectName(object) {
  return object?.display || `${object?.type ?? ""} ${object?.id ?? ""}`.trim();
}

// An error of the API in words: 404 (gone), 429 (throttled), or anything else.
export function errorText(error, t, notFound) {
  if (error?.status === 404) return t.get(notFound);
  if (error?.status === 429) return t.get("tooManyRequests");
  return t.get("actionFailed");
}

export class MutedThreads {
  constructor(root, { t, api, idPrefix, onUnmuted }) {
    this.t = t;
    this.api = api;
    this.idPrefix = idPrefix;
    this.onUnmuted = onUnmuted; // (object) => void
    const find = (selector) => root.querySelector(selector);
    this.title = find(".nw-muted-title");
    this.list = find(".nw-muted-list");
    this.empty = find(".nw-muted-empty");
    this.more = find(".nw-muted-more");
    this.status = find(".nw-muted-status");
    this.next = null;
    this.rows = new Map(); // id -> <li>
    this.objects = new Map(); // id -> the muted object ({type, id, display})
    this.unmuting = new Set(); // ids sent and not yet answered
    this.more.addEventListener("click", () => this.loadMore());
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest(".nw-muted-unmute");
      if (button) this.unmute(Number(button.closest("li").dataset.id));
    });
  }

  setStatus(text, { error = false } = {}) {
    this.status.textContent = text;
    this.status.classList.toggle("nw-muted-error", error);
  }

  loadError(error) {
    return this.t.get(error?.status === 429 ? "tooManyRequests" : "mutedLoadFailed");
  }

  // The first page, again.
  async load() {
    const loading = (this.loading = {});
    this.list.replaceChildren();
    this.rows.clear();
    this.objects.clear();
    this.next = null;
    this.more.hidden = true;
    this.empty.hidden = true;
    this.setStatus(this.t.get("loading"));
    try {
      const page = await this.api.subscriptions(null, { muted: "true" });
      if (loading !== this.loading) return;
      this.add(page);
      this.setStatus("");
    } catch (error) {
      if (loading !== this.loading) return;
      this.setStatus(this.loadError(error), { error: true });
      console.warn("notifications:", error);
    }
  }

  async loadMore() {
    if (!this.next || this.loadingMore) return;
    this.loadingMore = true;
    const loading = this.loading;
    try {
      const page = await this.api.subscriptions(this.next);
      if (loading !== this.loading) return;
      const first = this.add(page);
      // The button went away under the focus: on to the first row it brought.
      if (this.more.hidden) (first?.querySelector("button") ?? this.title).focus();
      this.setStatus("");
    } catch (error) {
      this.setStatus(this.loadError(error), { error: true });
      console.warn("notifications:", error);
    } finally {
      this.loadingMore = false;
    }
  }

  // Appends a page's muted rows (a row met twice is listed once); returns the first new one.
  add(page) {
    let first = null;
    for (const subscription of page.results ?? []) {
      if (!subscription.muted || this.rows.has(subscription.id)) continue;
      const row = this.row(subscription);
      this.rows.set(subscription.id, row);
      this.objects.set(subscription.id, subscription.object);
      this.list.append(row);
      first ??= row;
    }
    this.next = page.next ?? null;
    this.more.hidden = !this.next;
    this.showEmpty();
    return first;
  }

  showEmpty() {
    this.empty.hidden = this.rows.size > 0 || Boolean(this.next);
    this.list.hidden = this.rows.size === 0;
  }

  row(subscription) {
    const li = element("li", "nw-muted-row");
    li.dataset.id = String(subscription.id);
    const name = element("span", "nw-muted-name", objectName(subscription.object));
    name.id = `${this.idPrefix}-muted-${subscription.id}`;
    const button = element("button", "nw-muted-unmute", this.t.get("unmute"));
    button.type = "button";
    button.setAttribute("aria-describedby", name.id);
    li.append(name, button);
    return li;
  }

  async unmute(id) {
    const row = this.rows.get(id);
    if (!row || this.unmuting.has(id)) return;
    this.unmuting.add(id);
    const object = this.objects.get(id);
    try {
      await this.api.updateSubscription(id, { muted: false }); // 200 (still followed) or 204
    } catch (error) {
      // 404: the row is gone already (unmuted elsewhere): done all the same.
      if (error?.status !== 404) {
        this.unmuting.delete(id);
        this.setStatus(errorText(error, this.t, "actionFailed"), { error: true });
        console.warn("notifications:", error);
        return;
      }
    }
    this.unmuting.delete(id);
    this.remove(id, row);
    const name = objectName(object);
    this.setStatus(this.t.get("threadUnmutedNamed").replace("%(name)s", () => name));
    this.onUnmuted?.(object);
  }

  // The focus in a removed row moves to the next row's button (or the previous one's, or the
  // section's title), never to <body>.
  remove(id, row) {
    const focused = row.contains(row.getRootNode().activeElement);
    const neighbour = row.nextElementSibling ?? row.previousElementSibling;
    row.remove();
    this.rows.delete(id);
    this.objects.delete(id);
    this.showEmpty();
    if (focused) (neighbour?.querySelector("button") ?? this.title).focus();
  }
}
