// The widget's service worker (docs/widget.md, "Web Push"): shows what the server pushes while no
// page of the site is open, and brings the user to the notification when they click it.
//
// The REST API serves it at push/service-worker.js and the widget registers it with its default
// scope, that directory: it controls no page and never takes the place of a site's own service
// worker at "/". A site may also importScripts() it into its own (docs/push.md), so it defines
// no global and handles clicks on its own notifications only. A classic script: no dependency,
// no build step.

(() => {
  // The title of a push this worker cannot read, in the language of the page that registered it
  // (`?title=`, from the widget's strings).
  const FALLBACK_TITLE =
    new URL(self.location.href).searchParams.get("title") || self.location.host;
  // In the data of every notification this worker shows, to tell them from a site's own.
  const SOURCE = "notifications";

  self.addEventListener("push", (event) => {
    event.waitUntil(show(payloadOf(event.data)));
  });

  self.addEventListener("notificationclick", (event) => {
    const data = event.notification.data;
    if (data?.source !== SOURCE) return;
    event.notification.close();
    event.waitUntil(follow(data));
  });

  // The push service replaced this browser's subscription (Firefox does; Chrome never says).
  // This worker cannot tell the server (a POST needs the CSRF token, which only pages have): it
  // subscribes again with the same key, and the widget posts the new subscription the next time
  // a page of the site opens (it posts the current one whenever it starts).
  self.addEventListener("pushsubscriptionchange", (event) => {
    const applicationServerKey = event.oldSubscription?.options.applicationServerKey;
    if (event.newSubscription || !applicationServerKey) return;
    event.waitUntil(
      self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey }),
    );
  });

  // The server's JSON (docs/push.md), or {} for a push without a body or with one that is not
  // a JSON object: browsers require a visible notification for every push, so that one shows too.
  function payloadOf(data) {
    try {
      const payload = data?.json();
      if (payload && typeof payload === "object" && !Array.isArray(payload)) return payload;
    } catch {
      // not JSON
    }
    return {};
  }

  function text(value) {
    return typeof value === "string" ? value : "";
  }

  // The address `value` stands for if `allowed(url)` says it may be followed, else null.
  function address(value, allowed) {
    if (!text(value)) return null;
    try {
      const url = new URL(value, self.location.origin);
      return allowed(url) ? url.href : null;
    } catch {
      return null;
    }
  }

  async function show(payload) {
    const options = {
      body: text(payload.body),
      data: {
        source: SOURCE,
        id: Number.isInteger(payload.id) ? payload.id : null,
        // The notification's page: http(s) only. The open link: this site only.
        url: address(payload.url, (url) => ["http:", "https:"].includes(url.protocol)),
        open: address(payload.open, (url) => url.origin === self.location.origin),
      },
    };
    // The tag is the same for a group's notifications: a newer one replaces the older, and says
    // so again (renotify) once the group has several.
    const tag = text(payload.tag);
    if (tag) {
      options.tag = tag;
      options.renotify = payload.count > 1;
    }
    const created = Date.parse(payload.created_at);
    if (!Number.isNaN(created)) options.timestamp = created;
    const title = text(payload.title) || FALLBACK_TITLE;
    const shown = self.registration.showNotification(title, options);
    if (Number.isInteger(payload.unread_count) && "setAppBadge" in self.navigator) {
      // An installed web app's icon shows the count; elsewhere this does nothing.
      await self.navigator.setAppBadge(payload.unread_count).catch(() => {});
    }
    return shown;
  }

  // A window of the site already showing the notification's page (any of the site's windows
  // when it has none) is focused, and the notification marked read; otherwise a new window
  // opens the open link, which marks it read itself and redirects to the page.
  async function follow({ url, open }) {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const showing = windows.find(
      (client) => !url || withoutFragment(client.url) === withoutFragment(url),
    );
    if (showing) return Promise.all([markRead(open), showing.focus()]);
    try {
      return await self.clients.openWindow(open ?? url ?? "/");
    } catch (error) {
      // The browser refused the window (a click it does not count as the user's): the click
      // still marks the notification read.
      await markRead(open);
      throw error;
    }
  }

  function withoutFragment(href) {
    return href.split("#")[0];
  }

  // A GET of the open link marks the notification read (and seen) and answers with a redirect
  // to its page, which is not followed.
  async function markRead(open) {
    if (!open) return;
    await fetch(open, { redirect: "manual", credentials: "same-origin" }).catch(() => {});
  }
})();
