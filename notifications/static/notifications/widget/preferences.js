// The preferences view in the panel: where each level and category reaches the user (in the
// app, by email where the site sends email, by Web Push where it sends that), saved with
// `PUT preferences/` (docs/api.md).
// A WAI-ARIA disclosure: the "Preferences" button has aria-expanded and aria-controls, and the
// view comes right after it in the tab order. Escape in it closes it and puts the focus back on
// the button.
//
// Two tables (levels, categories): a row header, then a switch per channel, named by its row and
// column headers ("billing In-app"), so that a screen reader reads "category, in-app, email".
// A switch that is on means "sent"; the API speaks of what is muted. "Never email me" turns the
// email channel off as a whole: the email column then shows what it would send, disabled. Push
// has no such switch here: whether this browser gets pushes at all is the panel's "Desktop
// notifications" switch, so the channel's `enabled` is left as it is.
//
// The API lists no categories, so the view offers those the user muted (in any channel), those
// the project does not let anyone mute in-app (locked on, with why; their email and push stay
// the user's), the categories of the loaded notifications and those the page names
// (`{% notifications_widget categories="..." %}`).
//
// Below the form, the threads the user muted (muted.js), read again each time the view opens.

import { element } from "./dom.js";
import { MutedThreads } from "./muted.js";

const LEVELS = ["info", "success", "warning", "error"];
// The part of each channel's column header's id.
const COLUMNS = { inApp: "in-app", email: "email", push: "push" };

// Every message of a DRF error body ({field: [messages]}, nested for list items), as text.
export function errorMessages(data) {
  if (typeof data === "string") return [data];
  if (Array.isArray(data)) return data.flatMap(errorMessages);
  if (data && typeof data === "object") return Object.values(data).flatMap(errorMessages);
  return [];
}

export class Preferences {
  constructor(root, { t, api, idPrefix, categories, onOpen, onSaved, onUnmuted }) {
    this.t = t;
    this.api = api;
    this.idPrefix = idPrefix;
    this.categories = categories; // () => the categories this page knows of
    this.onOpen = onOpen;
    this.onSaved = onSaved;
    const find = (selector) => root.querySelector(selector);
    this.button = find(".nw-prefs-button");
    this.view = find(".nw-prefs");
    this.form = find(".nw-prefs-form");
    this.title = find(".nw-prefs-title");
    this.levels = find(".nw-prefs-levels");
    this.categoryList = find(".nw-prefs-categories");
    this.never = find(".nw-prefs-never");
    this.neverEmail = find(".nw-prefs-never-email");
    this.emailColumns = root.querySelectorAll(".nw-prefs-email-column");
    this.pushColumns = root.querySelectorAll(".nw-prefs-push-column");
    this.noCategories = find(".nw-prefs-no-categories");
    this.save = find(".nw-prefs-save");
    this.status = find(".nw-prefs-status");
    this.current = null; // the server's last answer
    // Below the switches: the muted threads, each unmuted at once.
    this.mutedThreads = new MutedThreads(this.view, { t, api, idPrefix, onUnmuted });
    this.button.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    this.neverEmail.addEventListener("change", () => this.showNeverEmail());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    for (const node of [this.button, this.view]) {
      node.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && this.isOpen) {
          event.preventDefault();
          event.stopPropagation(); // a second Escape closes the panel
          this.close({ focusButton: true });
        }
      });
    }
  }

  get isOpen() {
    return !this.view.hidden;
  }

  // `focus`: on the view's title (opened from a link rather than from its button).
  open({ focus = false } = {}) {
    if (!this.isOpen) {
      this.view.hidden = false;
      this.button.setAttribute("aria-expanded", "true");
      this.onOpen?.(true);
      this.load();
      this.mutedThreads.load();
    }
    if (focus) this.title.focus();
  }

  close({ focusButton = false } = {}) {
    if (!this.isOpen) return;
    if (focusButton) this.button.focus();
    this.view.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    this.onOpen?.(false);
  }

  setStatus(text, { error = false } = {}) {
    this.status.textContent = text;
    this.status.classList.toggle("nw-prefs-error", error);
  }

  async load() {
    const loading = (this.loading = {});
    this.current = null;
    this.form.inert = true;
    this.setStatus(this.t.get("loading"));
    try {
      const answer = await this.api.preferences();
      if (loading !== this.loading) return;
      this.show(answer);
      this.setStatus("");
    } catch (error) {
      if (loading !== this.loading) return;
      this.setStatus(this.t.get("preferencesLoadFailed"), { error: true });
      console.warn("notifications:", error);
    } finally {
      if (loading === this.loading) this.form.inert = false;
    }
  }

  // Saved in another tab: an open view shows what was saved (saving what it showed before would
  // undo it).
  update(answer) {
    if (this.isOpen && this.current) this.show(answer);
  }

  // Builds the switches from the server's answer, keeping the focus on the same switch.
  show(answer) {
    this.current = answer;
    const active = this.form.getRootNode().activeElement; // the widget's shadow root's
    const focused = this.form.contains(active) ? active : null;
    const focusedKey = focused?.dataset.key;
    const email = answer.email_available ? (answer.channels?.email ?? {}) : null;
    const push = answer.push_available ? (answer.channels?.push ?? {}) : null;
    const mutedIn = (channel) => ({
      level: new Set(channel?.muted_levels ?? []),
      category: new Set(channel?.muted_categories ?? []),
    });
    const muted = { inApp: mutedIn(answer), email: mutedIn(email), push: mutedIn(push) };
    const channels = ["inApp", ...(email ? ["email"] : []), ...(push ? ["push"] : [])];
    const unmutable = new Set(answer.unmutable_categories ?? []);
    const categories = [
      ...new Set([
        ...muted.inApp.category,
        ...muted.email.category,
        ...muted.push.category,
        ...unmutable,
        ...this.categories(),
      ]),
    ]
      .filter((category) => typeof category === "string" && category)
      .sort((a, b) => a.localeCompare(b));

    this.never.hidden = !email;
    this.neverEmail.checked = email?.enabled === false;
    for (const header of this.emailColumns) header.hidden = !email;
    for (const header of this.pushColumns) header.hidden = !push;
    const row = (kind, value, label, index) =>
      this.row({
        kind,
        value,
        label,
        id: `${this.idPrefix}-prefs-${kind}-${index}`,
        muted,
        channels,
        locked: kind === "category" && unmutable.has(value),
      });
    this.levels.replaceChildren(
      ...LEVELS.map((level, index) => row("level", level, this.t.level(level), index)),
    );
    this.categoryList.replaceChildren(
      ...categories.map((category, index) => row("category", category, category, index)),
    );
    this.categoryList.closest("table").hidden = categories.length === 0;
    this.noCategories.hidden = categories.length > 0;
    this.showNeverEmail();
    if (focusedKey) {
      const again = [...this.form.querySelectorAll("input")].find(
        (input) => input.dataset.key === focusedKey && !input.disabled,
      );
      (again ?? this.save).focus();
    }
  }

  // One row: its header (the level or category, and why it is locked), then a switch for each
  // channel, named by the row's header and the column's.
  row({ kind, value, label, id, muted, channels, locked }) {
    const tr = element("tr");
    const header = element("th", "nw-prefs-name");
    header.scope = "row";
    const name = element("span", "nw-prefs-label", label);
    name.id = id;
    header.append(name);
    tr.append(header);
    const part = kind === "level" ? "levels" : "categories";
    for (const channel of channels) {
      const column = `${this.idPrefix}-prefs-${part}-${COLUMNS[channel]}`;
      const cell = element("td", "nw-prefs-channel");
      const wrapper = element("label", "nw-prefs-switch");
      const input = element("input", "nw-switch");
      input.type = "checkbox";
      input.setAttribute("role", "switch");
      input.setAttribute("aria-labelledby", `${id} ${column}`);
      input.value = value;
      input.dataset.kind = kind;
      input.dataset.channel = channel;
      input.dataset.key = `${channel}:${kind}:${value}`;
      input.checked = !muted[channel][kind].has(value);
      if (channel === "inApp" && locked) {
        input.checked = true;
        input.disabled = true;
        input.dataset.locked = "";
        input.setAttribute("aria-describedby", `${id}-locked`);
      }
      wrapper.append(input);
      cell.append(wrapper);
      tr.append(cell);
    }
    if (locked) {
      const hint = element("span", "nw-prefs-hint", this.t.get("cannotMute"));
      hint.id = `${id}-locked`;
      header.append(hint);
      tr.classList.add("nw-prefs-locked");
    }
    return tr;
  }

  // "Never email me" on: the email column keeps what it would send, out of reach.
  showNeverEmail() {
    const never = this.neverEmail.checked;
    for (const input of this.form.querySelectorAll('input[data-channel="email"]')) {
      input.disabled = never;
    }
    this.form.classList.toggle("nw-prefs-no-email", never);
  }

  // What the switches of a channel mute: those off, of one kind (locked ones are on).
  muted(channel, kind) {
    return [...this.form.querySelectorAll(`input[data-channel="${channel}"][data-kind="${kind}"]`)]
      .filter((input) => !input.checked)
      .map((input) => input.value);
  }

  async submit() {
    if (this.saving) return;
    if (!this.current) {
      // Never save lists the server's were not read into: that would unmute everything.
      this.setStatus(this.t.get("preferencesLoadFailed"), { error: true });
      return;
    }
    // Not `disabled`: that would take the focus off the button a keyboard user just pressed.
    this.saving = true;
    this.form.setAttribute("aria-busy", "true");
    this.setStatus(this.t.get("saving"));
    try {
      const before = this.current;
      // A channel the view did not show (the site does not send it) is left as it is.
      const channels = {};
      if (before.email_available) {
        channels.email = {
          enabled: !this.neverEmail.checked,
          mutedCategories: this.muted("email", "category"),
          mutedLevels: this.muted("email", "level"),
        };
      }
      if (before.push_available) {
        // No `enabled`: the view has no switch for it, so the server keeps its own.
        channels.push = {
          mutedCategories: this.muted("push", "category"),
          mutedLevels: this.muted("push", "level"),
        };
      }
      const answer = await this.api.savePreferences({
        mutedCategories: this.muted("inApp", "category"),
        mutedLevels: this.muted("inApp", "level"),
        channels: Object.keys(channels).length ? channels : undefined,
      });
      this.show(answer);
      this.setStatus(this.t.get("preferencesSaved"));
      this.onSaved?.(answer, before);
    } catch (error) {
      const messages = error?.status === 400 ? errorMessages(error.data) : [];
      this.setStatus(messages.length ? messages.join(" ") : this.t.get("actionFailed"), {
        error: true,
      });
      if (error?.status !== 400) console.warn("notifications:", error);
    } finally {
      this.saving = false;
      this.form.removeAttribute("aria-busy");
    }
  }
}
