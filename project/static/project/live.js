// A minimal live view of the socket for the demo page, until the widget lands.
const state = document.getElementById("state");
const unread = document.getElementById("unread");
const live = document.getElementById("live");
let lastId = null;
const shown = new Set();  // ids already shown: resume may hand some over again, by design
let delay = 1000;

function show(notification) {
  if (shown.has(notification.id)) return;
  shown.add(notification.id);
  lastId = Math.max(lastId ?? 0, notification.id);
  const item = document.createElement("li");
  item.textContent = notification.title;  // always text, never HTML
  live.prepend(item);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/notifications/`);
  socket.onopen = () => { state.textContent = "connected"; delay = 1000; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if ("unread_count" in message) unread.textContent = message.unread_count;
    if (message.type === "hello") {
      if (lastId !== null) socket.send(JSON.stringify({ type: "resume", after: lastId }));
      lastId = lastId ?? message.last_id ?? 0;
    } else if (message.type === "notification") {
      show(message.notification);
    } else if (message.type === "backlog") {
      message.notifications.forEach(show);
    }
  };
  socket.onclose = (event) => {
    if (event.code === 4401) { state.textContent = "signed out"; return; }
    state.textContent = "reconnecting…";
    setTimeout(connect, Math.random() * delay);
    delay = Math.min(delay * 2, 30000);
  };
}
connect();
