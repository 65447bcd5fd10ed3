// An item's menu: the WAI-ARIA menu button pattern
// (https://www.w3.org/WAI/ARIA/apg/patterns/menu-button/). The button has aria-haspopup,
// aria-expanded and aria-controls; opening the menu (click, Enter, Space, Down arrow) focuses
// its first item, Up arrow its last; in the menu the arrows, Home and End move, Escape closes
// it and puts the focus back on the button, Tab closes it and moves on. A click or the focus
// elsewhere closes it. One menu is open at a time.
//
// The menu is absolutely placed under the button, or above it where the scrolling list (or the
// viewport) has no room below: the list clips what leaves it.

const GAP = 4; // px between the button and the menu

let openMenu = null;

export function menuOf(button) {
  return button.getRootNode().getElementById(button.getAttribute("aria-controls"));
}

function items(menu) {
  return [...menu.querySelectorAll('[role="menuitem"]')].filter((item) => !item.hidden);
}

export function isOpen(button) {
  return button.getAttribute("aria-expanded") === "true";
}

export function openMenuOf(button, { focus = "first" } = {}) {
  if (openMenu && openMenu !== button) closeMenu(openMenu);
  const menu = menuOf(button);
  menu.hidden = false;
  button.setAttribute("aria-expanded", "true");
  openMenu = button;
  place(button, menu);
  const all = items(menu);
  (focus === "last" ? all.at(-1) : all[0])?.focus();
}

export function closeMenu(button = openMenu, { focusButton = false } = {}) {
  if (!button || !isOpen(button)) return;
  const menu = menuOf(button);
  if (focusButton) button.focus();
  menu.hidden = true;
  menu.classList.remove("nw-menu-up");
  button.setAttribute("aria-expanded", "false");
  if (openMenu === button) openMenu = null;
}

// Under the button where the list clipping it (or the viewport) has room, else above it.
function place(button, menu) {
  menu.classList.remove("nw-menu-up");
  const clip = button.closest(".nw-scroll")?.getBoundingClientRect();
  const bottom = Math.min(clip?.bottom ?? Number.POSITIVE_INFINITY, window.innerHeight);
  const top = Math.max(clip?.top ?? 0, 0);
  const box = button.getBoundingClientRect();
  const height = menu.getBoundingClientRect().height;
  if (box.bottom + GAP + height > bottom && box.top - GAP - height >= top) {
    menu.classList.add("nw-menu-up");
  }
}

// Wires the menus of a container (the list) once: buttons `.nw-menu-button`, menus `[role=menu]`.
export function bindMenus(container) {
  container.addEventListener("click", (event) => {
    const button = event.target.closest(".nw-menu-button");
    if (!button) return;
    if (isOpen(button)) closeMenu(button);
    else openMenuOf(button);
  });
  container.addEventListener("keydown", (event) => {
    const button = event.target.closest(".nw-menu-button");
    if (button) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        openMenuOf(button, { focus: event.key === "ArrowUp" ? "last" : "first" });
      } else if (event.key === "Escape" && isOpen(button)) {
        event.preventDefault();
        event.stopPropagation(); // the panel stays open
        closeMenu(button);
      }
      return;
    }
    const menu = event.target.closest('[role="menu"]');
    if (!menu || !openMenu) return;
    const all = items(menu);
    const index = all.indexOf(event.target);
    let next = null;
    switch (event.key) {
      case "ArrowDown":
        next = all[(index + 1) % all.length];
        break;
      case "ArrowUp":
        next = all[(index - 1 + all.length) % all.length];
        break;
      case "Home":
        next = all[0];
        break;
      case "End":
        next = all.at(-1);
        break;
      case "Escape":
        event.preventDefault();
        event.stopPropagation(); // the panel stays open
        closeMenu(openMenu, { focusButton: true });
        return;
      case "Tab":
        // The browser's Tab then moves on from the button, as from the menu that follows it.
        closeMenu(openMenu, { focusButton: true });
        return;
      default:
        return;
    }
    event.preventDefault();
    next?.focus();
  });
  container.addEventListener("focusout", (event) => {
    if (!openMenu) return;
    const wrap = openMenu.closest(".nw-menu-wrap");
    if (!event.relatedTarget || !wrap.contains(event.relatedTarget)) closeMenu(openMenu);
  });
  // The page's document hears the widget's pointers too (composedPath() sees into the open
  // shadow root).
  document.addEventListener("pointerdown", (event) => {
    if (openMenu && !event.composedPath().includes(openMenu.closest(".nw-menu-wrap"))) {
      closeMenu(openMenu);
    }
  });
}
