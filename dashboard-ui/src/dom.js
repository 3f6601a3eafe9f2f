// The one way this page creates elements. Text goes in through textContent only:
// model names, user agents, paths and error messages come from requests and must
// never be parsed as HTML.

/**
 * el("td", { className: "num", text: "12", title: "..." }, [children])
 * Known keys: className, text, title, dataset (object), attrs (object of safe attributes).
 */
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = String(options.text);
  if (options.title !== undefined) node.title = String(options.title);
  for (const [key, value] of Object.entries(options.dataset || {})) node.dataset[key] = String(value);
  for (const [key, value] of Object.entries(options.attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`dashboard page is missing #${id}`);
  return node;
}

export function clear(node) {
  node.replaceChildren();
}

export function show(node, visible) {
  node.hidden = !visible;
}
