// The user's choices (pop-ups, desktop notifications), remembered where the browser allows it.

export function stored(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // storage disabled: nothing remembered
  }
}

export function store(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch {
    // storage disabled: the choice lasts as long as the page
  }
}
