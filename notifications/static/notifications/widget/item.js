// One notification in the panel's list. Content is always set as text, never parsed as HTML.

import { element } from "./dom.js";
import { icon } from "./icons.js";
import { safeUrl } from "./safe-url.js";
import { absoluteTime, relativeTime } from "./time.js";

const LEVELS = new Set(["info", "success", "warning", "error"]);

export function levelOf(notification) {
  return LEVELS.has(notification.level) ? notification.level : "info";
}

// Who is behind it, in words: "alice", or for a grouped notification standing for more than one
// "alice and 4 others" (the newest actor and how many more), or "and 4 more like it" without an
// actor. Empty when there is nothing to say.
export function actorsText(notification, t) {
  const count = Number.isInteger(notification.group_count) ? notification.group_count : 1;
  const actor = notification.actors?.[0]?.display || notification.actor?.display || "";
  if (count <= 1) return actor;
  if (actor) return t.plural("groupActors", count - 1, { actor });
  return t.plural("groupMore", count - 1);
}

// The title, with the level in words before it for those who do not see the icon's colour.
export function titleContent(notification, t, linkClass) {
  const level = element("span", "nw-sr-only", `${t.level(levelOf(notification))}: `);
  const href = safeUrl(notification.url);
  const title = element(href ? "a" : "span", href ? linkClass : "", notification.title);
  if (href) title.href = href;
  return [level, title];
}

// The key of an object (`{type, id}`: a notification's target, a muted row's object), or null:
// the thread that can be muted.
export function threadKey(object) {
  if (!object || typeof object.type !== "string" || object.id == null) return null;
  return `${object.type}:${object.id}`;
}

export function targetKey(notification) {
  return threadKey(notification.target);
}

export function renderItem(notification, { t, idPrefix, isMuted = () => false }) {
  const item = element("li", "nw-item");
  item.dataset.id = String(notification.id);
  const titleId = `${idPrefix}-item-${notification.id}`;

  const title = element("p", "nw-item-title");
  title.id = titleId;
  title.append(...titleContent(notification, t, "nw-item-link"));

  const main = element("div", "nw-item-main");
  main.append(title);
  if (notification.body) main.append(element("p", "nw-item-body", notification.body));
  const meta = element("p", "nw-item-meta");
  const unread = element("span", "nw-item-unread", t.get("unread"));
  meta.append(unread);
  const actors = actorsText(notification, t);
  if (actors) {
    const actor = element("span", "nw-item-actor", actors);
    if (notification.group_count > 1) {
      actor.classList.add("nw-item-group");
      actor.dataset.count = String(notification.group_count);
    }
    meta.append(actor);
  }
  const time = element("time", "nw-item-time");
  time.dateTime = notification.created_at;
  time.title = absoluteTime(notification.created_at, t.language);
  meta.append(time);

  const actions = element("div", "nw-item-actions");
  const toggle = element("button", "nw-action nw-action-toggle");
  toggle.type = "button";
  toggle.setAttribute("aria-describedby", titleId);
  const archive = element("button", "nw-action nw-action-archive", t.get("archive"));
  archive.type = "button";
  archive.dataset.action = "archive";
  archive.setAttribute("aria-describedby", titleId);
  actions.append(toggle, archive);
  if (targetKey(notification)) {
    actions.append(renderMenu(`${idPrefix}-item-${notification.id}`, titleId, t));
  }
  const footer = element("div", "nw-item-footer");
  footer.append(meta, actions);
  main.append(footer);
  // What muting the thread did (or why it failed), and its undo.
  const note = element("p", "nw-item-note");
  note.hidden = true;
  note.append(element("span", "nw-item-note-text"));
  const undo = element("button", "nw-action nw-item-undo", t.get("undo"));
  undo.type = "button";
  undo.dataset.thread = "undo";
  undo.hidden = true;
  note.append(undo);
  main.append(note);

  item.append(
    icon(levelOf(notification), `nw-icon nw-level-icon nw-level-${levelOf(notification)}`),
  );
  item.append(main);
  updateItem(item, notification, t, isMuted);
  return item;
}

// "More actions": a menu button (menu.js) and its menu, for a notification with a target.
function renderMenu(id, titleId, t) {
  const wrap = element("div", "nw-menu-wrap");
  const button = element("button", "nw-action nw-menu-button");
  button.type = "button";
  button.id = `${id}-menu-button`;
  button.setAttribute("aria-haspopup", "menu");
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", `${id}-menu`);
  button.setAttribute("aria-describedby", titleId);
  button.append(
    icon("more", "nw-icon nw-menu-icon"),
    element("span", "nw-sr-only", t.get("moreActions")),
  );
  const menu = element("div", "nw-menu");
  menu.id = `${id}-menu`;
  menu.hidden = true;
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-labelledby", button.id);
  const mute = element("button", "nw-menu-item nw-menu-mute");
  mute.type = "button";
  mute.tabIndex = -1;
  mute.setAttribute("role", "menuitem");
  menu.append(mute);
  wrap.append(button, menu);
  return wrap;
}

// Says what muting the thread did: `text`, an Undo button (`undo`), or an `error`; nothing
// hides it.
export function setNote(item, { text = "", undo = false, error = false } = {}) {
  const note = item.querySelector(".nw-item-note");
  note.hidden = !text;
  note.classList.toggle("nw-item-note-error", error);
  note.querySelector(".nw-item-note-text").textContent = text;
  note.querySelector(".nw-item-undo").hidden = !undo;
}

export function updateItem(item, notification, t, isMuted = () => false) {
  const unread = !notification.read_at;
  item.classList.toggle("nw-unread", unread);
  item.querySelector(".nw-item-unread").hidden = !unread;
  const toggle = item.querySelector(".nw-action-toggle");
  toggle.dataset.action = unread ? "read" : "unread";
  toggle.textContent = unread ? t.get("markRead") : t.get("markUnread");
  const mute = item.querySelector(".nw-menu-mute");
  if (mute) {
    const muted = isMuted(targetKey(notification));
    mute.dataset.thread = muted ? "unmute" : "mute";
    mute.textContent = muted ? t.get("unmuteThread") : t.get("muteThread");
  }
  updateTime(item, t);
}

export function updateTime(item, t) {
  const time = item.querySelector("time");
  time.textContent = relativeTime(time.dateTime, t.language);
}
