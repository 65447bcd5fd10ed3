// What one tab knows of the user's inbox: the listed notifications, every id ever received (to
// drop duplicates: resume and `after` hand some over again by design), the newest id (where the
// next resume starts), the state of ids it heard of but does not list, and the counts. No I/O:
// the controller feeds it.
//
// Changes are idempotent: a change to a state an id is known to have already changes nothing, so
// that the server's echo of a change this browser made (or relayed) is no news.
//
// Grouping: the server replaces a user's unread notification of a `group_key` by a new row (a
// new id, `group_count` one higher) and deletes the old one without a `changed` event. So a
// grouped notification standing for more than one supersedes every unread one of its key with a
// lower id: those leave the list, however the newer one arrives (pushed, resumed, polled, paged),
// and one that arrives after it (a page fetched before the fold) is not listed.

// What a `changed` state sets, as [field of stateOf(), value].
const CHANGES = {
  read: ["read", true],
  unread: ["read", false],
  seen: ["seen", true],
  archived: ["archived", true],
  unarchived: ["archived", false],
  deleted: ["deleted", true],
};

function stateOf(notification) {
  return {
    read: Boolean(notification.read_at),
    seen: Boolean(notification.seen_at),
    archived: Boolean(notification.archived_at),
    deleted: false,
  };
}

function sameState(a, b) {
  return a.read === b.read && a.seen === b.seen && a.archived === b.archived;
}

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
    this.states = new Map(); // id -> stateOf(), for ids heard of but not listed
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

  // What this tab knows of an id's state: undefined when nothing.
  knownState(id) {
    const item = this.items.get(id);
    return item ? stateOf(item) : this.states.get(id);
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
          this.unlist(other, "deleted");
          this.replaced.push(other.id);
        }
      }
    }
    this.items.set(notification.id, notification);
    this.states.delete(notification.id);
  }

  // Takes a listed notification off the list, remembering why (`archived` or `deleted`).
  unlist(notification, field) {
    this.items.delete(notification.id);
    this.states.set(notification.id, { ...stateOf(notification), [field]: true });
  }

  // A notification heard of that is not listed (archived, or below the paged-in range).
  remember(notification) {
    if (!this.items.has(notification.id)) this.states.set(notification.id, stateOf(notification));
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
      if (notification.archived_at) this.remember(notification);
      else this.put(notification);
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
      if (notification.archived_at) {
        this.remember(notification);
        continue;
      }
      if (this.inLoadedRange(notification.id)) this.put(notification);
      else this.remember(notification);
      fresh.push(notification);
    }
    return fresh;
  }

  // A fresh first page, to learn what changed elsewhere while only polling: states are replaced,
  // and what vanished from the page's range was archived or deleted. Returns what is new in it
  // (`fresh`, oldest first) and the ids whose state it changed here (`changed`).
  refresh(results) {
    const fresh = [];
    const changed = [];
    if (!results.length) return { fresh, changed };
    const ids = new Set(results.map((n) => n.id));
    const low = Math.min(...ids);
    const high = Math.max(...ids);
    for (const id of this.items.keys()) {
      if (id >= low && id <= high && !ids.has(id)) {
        this.items.delete(id);
        changed.push(id);
      }
    }
    const newest = this.newestId;
    for (const notification of results) {
      const { id } = notification;
      if (!this.known.has(id) && (newest === null || id > newest)) {
        fresh.push(notification);
      } else {
        const known = this.knownState(id);
        if (!known || !sameState(known, stateOf(notification))) changed.push(id);
      }
      this.known.add(id);
      this.raiseNewest(id);
      if (notification.archived_at) {
        this.items.delete(id);
        this.remember(notification);
      } else {
        this.put(notification);
      }
    }
    return { fresh: fresh.sort((a, b) => a.id - b.id), changed: changed.sort((a, b) => a - b) };
  }

  // A `changed` event: returns the ids it changed here, leaving out those known to be in that
  // state already. Ids heard of for the first time count as changed: the server names only rows
  // it changed. With `upTo` (a change of everything up to an id, whose `ids` the server leaves
  // empty once they are many) every notification known here up to that id is concerned too.
  // Listed ones move the counts at once (the server's counts, when they come, have the last
  // word).
  applyChange(ids, state, upTo = null, now = new Date().toISOString()) {
    const change = CHANGES[state];
    if (!change) return [];
    const [field, value] = change;
    const changed = [];
    const concerned = new Set(ids);
    if (Number.isInteger(upTo)) {
      for (const id of [...this.items.keys(), ...this.states.keys()]) {
        if (id <= upTo) concerned.add(id);
      }
    }
    for (const id of concerned) {
      const item = this.items.get(id);
      const known = this.knownState(id);
      if (known?.deleted || known?.[field] === value) continue;
      changed.push(id);
      if (item) this.changeListed(item, field, value, now);
      else this.states.set(id, { ...known, [field]: value });
    }
    return changed;
  }

  changeListed(item, field, value, now) {
    if (field === "archived" || field === "deleted") {
      this.unlist(item, field);
      if (!item.read_at) this.unreadCount -= 1;
      if (!item.seen_at) this.unseenCount -= 1;
    } else if (field === "read") {
      this.items.set(item.id, { ...item, read_at: value ? now : null });
      this.unreadCount += value ? -1 : 1;
    } else if (field === "seen") {
      this.items.set(item.id, { ...item, seen_at: now });
      this.unseenCount -= 1;
    }
    this.unreadCount = Math.max(0, this.unreadCount);
    this.unseenCount = Math.max(0, this.unseenCount);
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
