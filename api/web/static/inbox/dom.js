// Building DOM nodes: data always becomes text, never markup.
export const $ = (id) => document.getElementById(id);

// `code` in a text of the dictionary is shown as code.
export const rich = (text) => String(text).split("`").map((part, i) => (i % 2 ? el("code", null, part) : part));

export const present = (child) => child !== null && child !== undefined && child !== false;

// Builds DOM nodes; strings always become text nodes (never parsed as markup).
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  fill(node, children, true);
  return node;
}

// Appends (or, with keep=false, replaces) children, skipping empty ones.
export function fill(node, children, keep) {
  const nodes = [children].flat(Infinity).filter(present)
    .map((child) => (child instanceof Node ? child : String(child)));
  if (keep) node.append(...nodes); else node.replaceChildren(...nodes);
  return node;
}
