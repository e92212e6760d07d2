// Small DOM helpers: every text goes in through textContent, so nothing from a trace is ever parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function seconds(value) {
  if (value === null || value === undefined || typeof value !== "number") return value ?? "–";
  if (value === 0) return "0";
  if (value < 0.001) return `${(value * 1e6).toFixed(0)} µs`;
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
  return `${value.toFixed(2)} s`;
}

export function percent(value, digits = 1) {
  return typeof value === "number" ? `${(100 * value).toFixed(digits)}%` : "–";
}

export async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

export function outcome(row) {
  if (row.crashed) return h("span", { class: "badge crash" }, "crashed");
  return row.success ? h("span", { class: "badge ok" }, "success") : h("span", { class: "badge fail" }, "failed");
}

export function episodeHash(row) {
  const query = new URLSearchParams({ seed: row.seed });
  if (row.run) query.set("run", row.run);
  return `#/episode?${query}`;
}
