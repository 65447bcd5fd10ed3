// The preferences view in the panel: what the user mutes, by level and by category, saved with
// `PUT preferences/` (docs/api.md). A WAI-ARIA disclosure: the "Preferences" button has
// aria-expanded and aria-controls, and the view comes right after it in the tab order. Escape in
// it closes it and puts the focus back on the button.
//
// The API lists no categories, so the view offers those the user muted, those the project does
// not let anyone mute (shown disabled, with why), the categories of the loaded notifications and
// those the page names (`{% notifications_widget categories="..." %}`).

const LEVELS = ["info", "success", "warning", "error"];

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Every message of a DRF error body ({field: [messages]}, nested for list items), as text.
export function errorMessages(data) {
  if (typeof data === "string") return [data];
  if (Array.isArray(data)) return data.flatMap(errorMessages);
  if (data && typeof data === "object") return Object.values(data).flatMap(errorMessages);
  return [];
}

export class Preferences {
  constructor(root, { t, api, idPrefix, categories, onOpen, onSaved }) {
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
    this.levels = find(".nw-prefs-levels");
    this.categoryList = find(".nw-prefs-categories");
    this.noCategories = find(".nw-prefs-no-categories");
    this.save = find(".nw-prefs-save");
    this.status = find(".nw-prefs-status");
    this.current = null; // the server's last answer
    this.button.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
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

  open() {
    if (this.isOpen) return;
    this.view.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.onOpen?.(true);
    this.load();
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

  // Builds the checkboxes from the server's answer, keeping the focus on the same box.
  show(answer) {
    this.current = answer;
    const active = this.form.getRootNode().activeElement; // the widget's shadow root's
    const focused = this.form.contains(active) ? active : null;
    const focusedKey = focused?.dataset.key;
    const mutedLevels = new Set(answer.muted_levels ?? []);
    const muted = new Set(answer.muted_categories ?? []);
    const unmutable = new Set(answer.unmutable_categories ?? []);
    const categories = [...new Set([...muted, ...unmutable, ...this.categories()])]
      .filter((category) => typeof category === "string" && category)
      .sort((a, b) => a.localeCompare(b));

    this.levels.replaceChildren(
      ...LEVELS.map((level) =>
        this.checkbox({
          kind: "level",
          value: level,
          label: this.t.level(level),
          checked: mutedLevels.has(level),
        }),
      ),
    );
    this.categoryList.replaceChildren(
      ...categories.map((category, index) =>
        this.checkbox({
          kind: "category",
          value: category,
          label: category,
          checked: muted.has(category) && !unmutable.has(category),
          locked: unmutable.has(category) ? `${this.idPrefix}-prefs-locked-${index}` : null,
        }),
      ),
    );
    this.noCategories.hidden = categories.length > 0;
    if (focusedKey) {
      const again = [...this.form.querySelectorAll("input")].find(
        (input) => input.dataset.key === focusedKey,
      );
      (again ?? this.save).focus();
    }
  }

  checkbox({ kind, value, label, checked, locked = null }) {
    const row = element("div", "nw-prefs-row");
    const wrapper = element("label", "nw-option");
    const input = element("input");
    input.type = "checkbox";
    input.name = kind === "level" ? "muted_levels" : "muted_categories";
    input.value = value;
    input.checked = checked;
    input.dataset.key = `${kind}:${value}`;
    wrapper.append(input, element("span", "nw-prefs-label", label));
    row.append(wrapper);
    if (locked) {
      input.disabled = true;
      input.setAttribute("aria-describedby", locked);
      const hint = element("span", "nw-prefs-hint", this.t.get("cannotMute"));
      hint.id = locked;
      row.append(hint);
      row.classList.add("nw-prefs-locked");
    }
    return row;
  }

  checked(name) {
    return [...this.form.querySelectorAll(`input[name="${name}"]`)]
      .filter((input) => input.checked && !input.disabled)
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
      const answer = await this.api.savePreferences({
        mutedCategories: this.checked("muted_categories"),
        mutedLevels: this.checked("muted_levels"),
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
