// The one way the widget builds an element: a tag, its class and its text (set as text, never
// parsed as HTML).

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
