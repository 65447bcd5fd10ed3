// Desktop notifications (the Notification API), only once the user has opted in from the panel.

import { store, stored } from "./storage.js";

const OPT_IN_KEY = "notifications-widget:desktop";

export class DesktopNotifications {
  constructor({ language }) {
    this.language = language;
    this.optedIn = stored(OPT_IN_KEY) === "on";
  }

  get supported() {
    return "Notification" in window;
  }

  get blocked() {
    return this.supported && Notification.permission === "denied";
  }

  get enabled() {
    return this.supported && this.optedIn && Notification.permission === "granted";
  }

  async enable() {
    if (!this.supported) return false;
    const permission = await Notification.requestPermission();
    this.optedIn = permission === "granted";
    store(OPT_IN_KEY, this.optedIn ? "on" : null);
    return this.optedIn;
  }

  disable() {
    this.optedIn = false;
    store(OPT_IN_KEY, null);
  }

  // The tag makes a second tab's copy of the same notification replace the first.
  show(notification, onClick) {
    if (!this.enabled) return;
    try {
      const desktop = new Notification(notification.title, {
        body: notification.body,
        tag: `notifications-widget-${notification.id}`,
        lang: this.language,
      });
      desktop.addEventListener("click", () => {
        window.focus();
        desktop.close();
        onClick(notification);
      });
    } catch {
      // Some browsers allow desktop notifications only from a service worker.
    }
  }
}
