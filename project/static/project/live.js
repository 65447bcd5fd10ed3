// A minimal live view of the socket for the demo page, until the widget lands.
const state = document.getElementById("state");
const unread = document.getElementById("unread");
const live = document.getElementById("live");
let lastId = null;
let delay = 1000;

function show(text) {
  const item = document.createElement("li");
  item.textContent = text;  // always text, never HTML
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
      lastId = Math.max(lastId ?? 0, message.notification.id);
      show(message.notification.title);
    } else if (message.type === "backlog") {
      for (const n of message.notifications) { if (n.id > lastId) { lastId = n.id; show(n.title); } }
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
