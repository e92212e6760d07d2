// The episodes table: native <table>, sorted by a click on a column head, filtered by outcome and by text.
import { h, seconds, outcome, episodeHash } from "./dom.js";

// Kept across views, so going back from an episode shows the same filtered, sorted table.
const state = { outcome: "all", text: "", sort: "seed", descending: false };

function columns(data) {
  const suite = data.kind === "suite";
  const cols = [];
  if (suite) {
    cols.push({ key: "configuration", label: "configuration" }, { key: "level", label: "level" });
    if (data.episodes.some((r) => r.variant && r.variant !== "base")) cols.push({ key: "variant", label: "variant" });
  }
  cols.push(
    { key: "seed", label: "seed", numeric: true, render: (r) => h("a", { href: episodeHash(r) }, r.seed) },
    { key: "task", label: "task" },
    { key: "success", label: "outcome", value: (r) => (r.crashed ? 2 : r.success ? 0 : 1), render: outcome },
    { key: "failure_stage", label: "failure stage", nowrap: true,
      value: (r) => r.failure_stage ?? r.suite_stage ?? "",
      render: (r) => [r.failure_stage ?? r.suite_stage ?? "", r.failure_skill ? ` (${r.failure_skill})` : ""] },
    { key: "failure_kind", label: "kind" },
    { key: "failure_reason", label: "reason",
      render: (r) => h("span", { class: "reason", title: r.failure_reason ?? "" }, r.failure_reason ?? "") },
    { key: "replans", label: "replans", numeric: true },
    { key: "wall_time", label: "wall", numeric: true, render: (r) => seconds(r.wall_time) },
  );
  for (const stage of data.stages) {
    if (!data.episodes.some((r) => r.latency?.[stage])) continue;  // a stage no episode spent time in
    cols.push({ key: `latency.${stage}`, label: stage, numeric: true, stage: true,
      value: (r) => r.latency?.[stage] ?? null, render: (r) => seconds(r.latency?.[stage]) });
  }
  return cols;
}

const valueOf = (col, row) => (col.value ? col.value(row) : row[col.key]);

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined || a === "") return 1;  // blanks last either way
  if (b === null || b === undefined || b === "") return -1;
  return typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b), undefined,
    { numeric: true });
}

function matches(row) {
  if (state.outcome === "success" && !row.success) return false;
  if (state.outcome === "failure" && row.success) return false;
  const text = state.text.trim().toLowerCase();
  if (!text) return true;
  const haystack = [row.seed, row.task, row.instruction, row.failure_stage, row.failure_kind, row.failure_skill,
    row.failure_reason, row.run, row.configuration, row.level, row.variant, row.suite_stage].join(" ").toLowerCase();
  return text.split(/\s+/).every((word) => haystack.includes(word));
}

export function setTextFilter(text) {
  state.text = text;
}

export function episodesTable(data) {
  const cols = columns(data);
  const body = h("tbody");
  const count = h("span", { class: "muted", id: "shown-count" });
  const heads = cols.map((col) => h("th", {
    class: col.numeric ? "num sortable" : "sortable", scope: "col", "data-key": col.key,
    onclick: () => {
      state.descending = state.sort === col.key ? !state.descending : false;
      state.sort = col.key;
      draw();
    },
  }, col.label));

  function draw() {
    const col = cols.find((c) => c.key === state.sort) ?? cols.find((c) => c.key === "seed");
    const rows = data.episodes.filter(matches).sort((a, b) => {
      const order = compare(valueOf(col, a), valueOf(col, b));
      return state.descending ? -order : order;
    });
    body.replaceChildren(...rows.map((row) => h("tr", {
      class: row.success ? "ok" : "fail", tabindex: "0", "data-seed": row.seed, "data-run": row.run,
      onclick: (event) => { if (event.target.tagName !== "A") location.hash = episodeHash(row); },
      onkeydown: (event) => { if (event.key === "Enter") location.hash = episodeHash(row); },
    }, cols.map((c) => h("td", { class: c.numeric ? "num" : c.nowrap ? "nowrap" : null },
      c.render ? c.render(row) : (valueOf(c, row) ?? ""))))));
    if (!rows.length) body.append(h("tr", {}, h("td", { colspan: cols.length, class: "muted empty" },
      "No episode matches the filter.")));
    for (const th of heads) {
      const sorted = th.dataset.key === col.key;
      th.setAttribute("aria-sort", sorted ? (state.descending ? "descending" : "ascending") : "none");
    }
    count.textContent = `${rows.length} of ${data.episodes.length} episodes`;
  }

  const outcomeSelect = h("select", { id: "outcome-filter", "aria-label": "outcome",
    onchange: (event) => { state.outcome = event.target.value; draw(); } },
  ...[["all", "all episodes"], ["failure", "failures only"], ["success", "successes only"]].map(([value, label]) =>
    h("option", { value, selected: state.outcome === value }, label)));
  const search = h("input", { id: "text-filter", type: "search", placeholder: "filter: reason, task, stage, seed…",
    value: state.text, oninput: (event) => { state.text = event.target.value; draw(); } });
  draw();
  return h("section", { class: "episodes" },
    h("div", { class: "toolbar" }, h("h2", {}, "Episodes"), outcomeSelect, search, count),
    h("div", { class: "scroll" }, h("table", { id: "episodes", class: "grid" },
      h("thead", {}, h("tr", {}, heads)), body)),
    h("p", { class: "muted hint" },
      "Click a column head to sort, a row to open the episode. Times are wall seconds per stage."));
}
