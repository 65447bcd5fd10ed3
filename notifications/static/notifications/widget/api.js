// The REST API (docs/api.md) over fetch, with the session cookie and the CSRF token.

export class ApiError extends Error {
  // `data`: the parsed JSON body of the answer, if any (a 400's {field: [messages]}).
  constructor(status, message, data) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.data = data;
  }

  get signedOut() {
    return this.status === 401 || this.status === 403;
  }
}

const DEFAULT_POLL_SECONDS = 15;

export class NotificationsApi {
  constructor({ baseUrl, csrfToken = "", csrfCookie = "csrftoken" }) {
    this.baseUrl = new URL(baseUrl, window.location.href);
    this.csrfToken = csrfToken;
    this.csrfCookie = csrfCookie;
  }

  url(path = "", params = {}) {
    const url = new URL(path, this.baseUrl);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return url;
  }

  // The cookie follows a token rotated after the page was rendered; the rendered one serves
  // projects whose cookie the script cannot read.
  csrf() {
    if (this.csrfCookie) {
      for (const pair of document.cookie.split(";")) {
        const [name, ...value] = pair.trim().split("=");
        if (name === this.csrfCookie) return decodeURIComponent(value.join("="));
      }
    }
    return this.csrfToken;
  }

  async request(url, { method = "GET", body, headers = {}, keepalive = false } = {}) {
    const options = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", ...headers },
      keepalive,
    };
    if (method !== "GET") options.headers["X-CSRFToken"] = this.csrf();
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    if (response.status === 304) return response;
    if (!response.ok) {
      const data = await response.json().catch(() => undefined);
      throw new ApiError(response.status, typeof data?.detail === "string" ? data.detail : "", data);
    }
    return response;
  }

  async json(url, options) {
    const response = await this.request(url, options);
    return response.status === 204 ? null : response.json();
  }

  // One page of the inbox, newest first: {results, next}. Follow `next` for older pages.
  page(next = null, params = {}) {
    return this.json(next ? new URL(next, this.baseUrl) : this.url("", params));
  }

  // Everything newer than `afterId` (and, by design, some just before it: drop known ids).
  async newerThan(afterId) {
    const results = [];
    let next = this.url("", { after: afterId, page_size: 100 });
    while (next) {
      const page = await this.json(new URL(next, this.baseUrl));
      results.push(...page.results);
      next = page.next;
    }
    return results;
  }

  // {status, etag, intervalSeconds, counts}: counts is null on 304 Not Modified.
  async unreadCount(etag = null) {
    const headers = etag ? { "If-None-Match": etag } : {};
    const response = await this.request(this.url("unread-count/"), { headers });
    const interval = Number.parseInt(response.headers.get("X-Poll-Interval"), 10);
    return {
      status: response.status,
      etag: response.headers.get("ETag") ?? etag,
      intervalSeconds: interval > 0 ? interval : DEFAULT_POLL_SECONDS,
      counts: response.status === 304 ? null : await response.json(),
    };
  }

  change(id, action, options = {}) {
    return this.json(this.url(`${encodeURIComponent(id)}/${action}/`), {
      method: "POST",
      ...options,
    });
  }

  readAll(upTo) {
    return this.json(this.url("read-all/"), { method: "POST", body: upTo ? { up_to: upTo } : {} });
  }

  seen(upTo) {
    return this.json(this.url("seen/"), { method: "POST", body: { up_to: upTo } });
  }

  // {muted_categories, muted_levels, unmutable_categories, channels: {email: {enabled,
  // muted_categories, muted_levels}, push: {...the same}}, email_available, push_available}
  preferences() {
    return this.json(this.url("preferences/"));
  }

  // Replaces both in-app lists, and each channel given (`{email: {enabled, mutedCategories,
  // mutedLevels}, push: {...}}`; one left out is left as it is); a 400 (ApiError with `data`)
  // names what the server refused.
  savePreferences({ mutedCategories, mutedLevels, channels }) {
    const body = { muted_categories: mutedCategories, muted_levels: mutedLevels };
    if (channels) {
      body.channels = Object.fromEntries(
        Object.entries(channels).map(([name, channel]) => [
          name,
          {
            enabled: channel.enabled,
            muted_categories: channel.mutedCategories,
            muted_levels: channel.mutedLevels,
          },
        ]),
      );
    }
    return this.json(this.url("preferences/"), { method: "PUT", body });
  }

  // This browser's Web Push subscription (`PushSubscription.toJSON()`): added, or kept with its
  // keys refreshed and taken over from whoever it was before.
  savePushSubscription(subscription) {
    return this.json(this.url("push-subscriptions/"), { method: "POST", body: subscription });
  }

  deletePushSubscription(endpoint) {
    return this.json(this.url("push-subscriptions/"), { method: "DELETE", body: { endpoint } });
  }

  // The user's follows and mutes (`subscriptions/`, newest first): {results, next}; `params`
  // filter the first page (`{muted: "true"}`), `next` is the cursor of a later one.
  subscriptions(next = null, params = {}) {
    return this.json(next ? new URL(next, this.baseUrl) : this.url("subscriptions/", params));
  }

  // Mutes an object (`{type, id}`, a notification's `target`): its row, muted.
  mute(object) {
    return this.muting("mute", object);
  }

  // Ends the mute of an object; a follow of it, if any, resumes.
  unmute(object) {
    return this.muting("unmute", object);
  }

  muting(verb, { type, id }) {
    return this.json(this.url(`subscriptions/${verb}/`), {
      method: "POST",
      body: { object: { type, id } },
    });
  }

  // `{muted: false}` and/or `{following: false}`: the row (200), or null when the row is gone
  // (204: it neither follows nor mutes any more).
  updateSubscription(id, changes) {
    return this.json(this.url(`subscriptions/${encodeURIComponent(id)}/`), {
      method: "PATCH",
      body: changes,
    });
  }
}
