// What one tab knows of the user's inbox: the listed notifications, every id ever received (to
// drop duplicates: resume and `after` hand some over again by design), the newest id (where the
// next resume starts) and the counts. No I/O: the controller feeds it.
//
// Grouping: the server replaces a user's unread notification of a `group_key` by a new row (a
// new id, `group_count` one higher) and deletes the old one without a `changed` event. So a
// grouped notification standing for more than one supersedes every unread one of its key with a
// lower id: those leave the list, however the newer one arrives (pushed, resumed, polled, paged),
// and one that arrives after it (a page fetched before the fold) is not listed.

// Whether `newer` replaced `older` on the server.
export function supersedes(newer, older) {
  return (
    Boolean(newer.group_key) &&
    newer.group_key === older.group_key &&
    newer.group_count > 1 &&
    older.id < newer.id &&
    !older.read_at
  );
}

export class Inbox {
  constructor() {
    this.items = new Map(); // id -> notification, the unarchived ones in the loaded range
    this.known = new Set();
    this.newestId = null;
    this.unreadCount = 0;
    this.unseenCount = 0;
    // undefined: the first page is not loaded yet; null: every page is; else the next page's URL
    this.nextPage = undefined;
    this.floorId = null; // the oldest id paged in while older pages remain
    this.replaced = []; // ids unlisted because a grouped notification replaced them (takeReplaced)
  }

  get loaded() {
    return this.nextPage !== undefined;
  }

  get hasMore() {
    return typeof this.nextPage === "string";
  }

  list() {
    return [...this.items.values()].sort((a, b) => b.id - a.id);
  }

  // The ids unlisted as replaced since the last call.
  takeReplaced() {
    const replaced = this.replaced;
    this.replaced = [];
    return replaced;
  }

  // Lists a notification, unless one listed replaced it already; unlists those it replaced.
  put(notification) {
    if (notification.group_key) {
      for (const other of this.items.values()) {
        if (other.id !== notification.id && supersedes(other, notification)) {
          this.items.delete(notification.id);
          return;
        }
      }
      for (const other of [...this.items.values()]) {
        if (supersedes(notification, other)) {
          this.items.delete(other.id);
          this.replaced.push(other.id);
        }
      }
    }
    this.items.set(notification.id, notification);
  }

  raiseNewest(id) {
    if (Number.isInteger(id) && (this.newestId === null || id > this.newestId)) this.newestId = id;
  }

  // Below the paged-in range, a notification waits for its page: listing it now would leave a gap.
  inLoadedRange(id) {
    return !this.hasMore || this.floorId === null || id > this.floorId;
  }

  // A page of the REST list, the first or an older one.
  addPage(results, next) {
    for (const notification of results) {
      this.known.add(notification.id);
      this.raiseNewest(notification.id);
      if (!notification.archived_at) this.put(notification);
      if (this.floorId === null || notification.id < this.floorId) this.floorId = notification.id;
    }
    this.nextPage = next ?? null;
  }

  // Pushed or caught-up notifications; returns those never received before, oldest first.
  receive(notifications) {
    const fresh = [];
    for (const notification of [...notifications].sort((a, b) => a.id - b.id)) {
      this.raiseNewest(notification.id);
      if (this.known.has(notification.id)) continue;
      this.known.add(notification.id);
      if (notification.archived_at) continue;
      if (this.inLoadedRange(notification.id)) this.put(notification);
      fresh.push(notification);
    }
    return fresh;
  }

  // A fresh first page, to learn what changed elsewhere while only polling: states are replaced,
  // and what vanished from the page's range was archived or deleted. Returns what is new in it.
  refresh(results) {
    const fresh = [];
    if (!results.length) return fresh;
    const ids = new Set(results.map((n) => n.id));
    const low = Math.min(...ids);
    const high = Math.max(...ids);
    for (const id of this.items.keys()) {
      if (id >= low && id <= high && !ids.has(id)) this.items.delete(id);
    }
    const newest = this.newestId;
    for (const notification of results) {
      if (!this.known.has(notification.id) && (newest === null || notification.id > newest)) {
        fresh.push(notification);
      }
      this.known.add(notification.id);
      this.raiseNewest(notification.id);
      if (notification.archived_at) this.items.delete(notification.id);
      else this.put(notification);
    }
    return fresh.sort((a, b) => a.id - b.id);
  }

  // A `changed` event: returns the ids whose listed state changed. With `upTo` (a change of
  // everything up to an id, whose `ids` the server leaves empty once they are many) every listed
  // notification up to that id is in `state` now.
  applyChange(ids, state, upTo = null, now = new Date().toISOString()) {
    const touched = [];
    const concerned = new Set(ids);
    if (Number.isInteger(upTo)) {
      for (const id of this.items.keys()) if (id <= upTo) concerned.add(id);
    }
    for (const id of concerned) {
      const item = this.items.get(id);
      if (!item) continue;
      if (state === "archived" || state === "deleted") {
        this.items.delete(id);
      } else if (state === "read" && !item.read_at) {
        this.items.set(id, { ...item, read_at: now });
      } else if (state === "unread" && item.read_at) {
        this.items.set(id, { ...item, read_at: null });
      } else if (state === "seen" && !item.seen_at) {
        this.items.set(id, { ...item, seen_at: now });
      } else {
        continue;
      }
      touched.push(id);
    }
    return touched;
  }

  // Returns whether anything changed.
  setCounts(unread, unseen) {
    if (!Number.isInteger(unread) || !Number.isInteger(unseen)) return false;
    const changed = unread !== this.unreadCount || unseen !== this.unseenCount;
    this.unreadCount = unread;
    this.unseenCount = unseen;
    return changed;
  }
}
