// The notifications widget: an ES module, no build step, no dependency. The template tag
// {% notifications_widget %} renders its markup and loads this file; every element with
// data-notifications-widget becomes a live bell. See docs/widget.md.

import { NotificationsWidget } from "./widget/controller.js";

export { NotificationsWidget };

export function mount(root, options = {}) {
  root.notificationsWidget ??= new NotificationsWidget(root, options).start();
  return root.notificationsWidget;
}

for (const root of document.querySelectorAll("[data-notifications-widget]")) {
  window.notificationsWidget ??= mount(root);
}
