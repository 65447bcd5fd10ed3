// The demo page: a live dashboard built only on the widget's public events and API
// (docs/widget.md), and a send button that stays on the page.

const widget = document.querySelector("[data-notifications-widget]");
const state = document.getElementById("state");
const unread = document.getElementById("unread");
const received = document.getElementById("received");
const live = document.getElementById("live");
let count = 0;

function showState(name) {
  state.textContent = name;
  state.dataset.state = name;
}

if (widget?.notificationsWidget) {
  showState(widget.notificationsWidget.state);
  unread.textContent = widget.notificationsWidget.unreadCount;
}

document.addEventListener("notifications:connection", (event) => showState(event.detail.state));

document.addEventListener("notifications:changed", (event) => {
  unread.textContent = event.detail.unreadCount;
});

document.addEventListener("notifications:received", (event) => {
  const item = document.createElement("li");
  item.textContent = event.detail.notification.title; // text, never HTML
  item.dataset.level = event.detail.notification.level;
  live.prepend(item);
  count += 1;
  received.textContent = count;
});

// Without this script the form posts and the page reloads; with it, the page stays put and
// the notification arrives through the socket like any other.
const form = document.querySelector(".send-test");
form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const result = form.querySelector(".send-result");
  const response = await fetch(form.action, {
    method: "POST",
    body: new FormData(form),
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  result.textContent = response.ok ? "Sent." : `Failed (${response.status}).`;
});
