// Desktop notifications (the Notification API), only once the user has opted in from the panel:
// shown by the page while one is open, and where the site sends Web Push (push.js) by its service
// worker while none is.

import { store, stored } from "./storage.js";

const OPT_IN_KEY = "notifications-widget:desktop";

export class DesktopNotifications {
  constructor({ language, push }) {
    this.language = language;
    this.push = push;
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

  // Asks the permission (from the user's click: browsers ignore a request without one), then
  // subscribes to Web Push where the site sends it. Without it (no push service, or none
  // reachable) the page still shows them.
  async enable() {
    if (!this.supported) return false;
    const permission = await Notification.requestPermission();
    this.optedIn = permission === "granted";
    store(OPT_IN_KEY, this.optedIn ? "on" : null);
    if (this.optedIn) await this.push.subscribe();
    return this.optedIn;
  }

  async disable() {
    this.optedIn = false;
    store(OPT_IN_KEY, null);
    await this.push.unsubscribe();
  }

  // On start: posts this browser's subscription again (subscribing again if the browser lost
  // it), which keeps the server in step and gives the browser to whoever is signed in now.
  async resume() {
    if (this.enabled) await this.push.subscribe();
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
