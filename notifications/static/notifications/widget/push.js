// Web Push (docs/widget.md): this browser's subscription, through the widget's service worker
// (notifications/static/notifications/push/service-worker.js), kept on the server so that
// notifications reach the user while no page of the site is open.

// The application server's key (`data-push-key`: base64url, no padding) as the bytes
// `pushManager.subscribe()` takes; null for anything else.
export function keyBytes(key) {
  if (!key || !/^[A-Za-z0-9_-]+$/.test(key)) return null;
  const base64 = key.replace(/-/g, "+").replace(/_/g, "/");
  try {
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
    return Uint8Array.from(binary, (character) => character.charCodeAt(0));
  } catch {
    return null; // a length base64 cannot have
  }
}

function sameBytes(a, b) {
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((byte, index) => byte === b[index]);
}

// Resolves once the registration has an active worker (what subscribing needs). Not
// `navigator.serviceWorker.ready`: that waits for a worker controlling this page, and the
// widget's controls none.
function activated(registration) {
  if (registration.active) return Promise.resolve(registration);
  const worker = registration.installing ?? registration.waiting;
  return new Promise((resolve, reject) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve(registration);
      else if (worker.state === "redundant") reject(new Error("the service worker failed"));
    });
  });
}

export class WebPush {
  // `key` and `workerUrl` come from the template tag, only when the site sends Web Push;
  // `fallbackTitle` is the title of a push the worker cannot read.
  constructor({ api, key, workerUrl, fallbackTitle }) {
    this.api = api;
    this.key = keyBytes(key);
    this.workerUrl = workerUrl ? new URL(workerUrl, window.location.href) : null;
    this.fallbackTitle = fallbackTitle;
    this.last = Promise.resolve(); // the latest change, which the next one waits for
  }

  get supported() {
    if (!this.key || !this.workerUrl) return false;
    return "serviceWorker" in navigator && "PushManager" in window;
  }

  // One change at a time, in order: the switch turned off while the page's start-up post is on
  // its way deletes after that post, not before it. (Neither change ever rejects.)
  serially(change) {
    this.last = this.last.then(change);
    return this.last;
  }

  // Registers the worker, subscribes (or keeps this browser's subscription) and gives it to the
  // server, which takes it over from whoever had it before. Resolves to whether it all worked:
  // without a push service (a browser that has none, or cannot reach its own) it does not.
  subscribe() {
    return this.serially(() => this.subscribeNow());
  }

  unsubscribe() {
    return this.serially(() => this.unsubscribeNow());
  }

  async subscribeNow() {
    if (!this.supported) return false;
    try {
      const url = new URL(this.workerUrl);
      url.searchParams.set("title", this.fallbackTitle);
      const registration = await activated(await navigator.serviceWorker.register(url.href));
      let subscription = await registration.pushManager.getSubscription();
      const key = subscription?.options?.applicationServerKey;
      if (key && !sameBytes(key, this.key)) {
        // The site changed its key: a subscription is bound to one, so it is replaced.
        await subscription.unsubscribe();
        subscription = null;
      }
      subscription ??= await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: this.key,
      });
      await this.api.savePushSubscription(subscription.toJSON());
      return true;
    } catch (error) {
      console.warn("notifications: no Web Push in this browser:", error);
      return false;
    }
  }

  // Ends this browser's subscription, here and on the server (each whether or not the other
  // works: a push service answers 410 Gone for an endpoint unsubscribed here, and the server
  // forgets it then).
  async unsubscribeNow() {
    if (!this.supported) return;
    try {
      const registration = await navigator.serviceWorker.getRegistration(this.workerUrl.href);
      const subscription = await registration?.pushManager.getSubscription();
      if (!subscription) return;
      const [server] = await Promise.allSettled([
        this.api.deletePushSubscription(subscription.endpoint),
        subscription.unsubscribe(),
      ]);
      if (server.status === "rejected" && server.reason?.status !== 404) throw server.reason;
    } catch (error) {
      console.warn("notifications: the push subscription could not be ended:", error);
    }
  }
}
