// The viewer's page: hash routes #/ (the run or suite) and #/episode?seed=N[&run=<cell>] (one episode).
import { h, seconds, percent, getJSON, outcome, episodeHash } from "./dom.js";
import { episodesTable, setTextFilter } from "./table.js";
import { timeline } from "./timeline.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
let folder = null;  // /api/folder, fetched once

function card(label, value, note) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value),
    note ? h("div", { class: "muted" }, note) : null);
}

function stageBars(stageSeconds) {
  const entries = Object.entries(stageSeconds ?? {}).filter(([, v]) => typeof v === "number" && v > 0);
  const total = entries.reduce((sum, [, v]) => sum + v, 0) || 1;
  return h("div", { class: "stages" }, entries.map(([stage, value]) => h("div", { class: "stage" },
    h("span", { class: "name" }, stage),
    h("span", { class: "bar" }, h("span", { style: `width:${(100 * value / total).toFixed(1)}%` })),
    h("span", { class: "num" }, seconds(value)))));
}

function runView(data) {
  const s = data.summary;
  const reasons = s.failure_reasons ?? [];
  return [
    h("section", { class: "head" }, h("h1", {}, `Run ${data.name}`), h("div", { class: "muted path" }, data.path),
      h("div", { class: "chips" }, Object.entries(data.components).map(([group, name]) =>
        h("span", { class: "chip" }, h("small", {}, `${group} `), name ?? "–")))),
    h("section", { class: "cards", id: "summary" },
      card("episodes", s.episodes),
      card("succeeded", `${s.successes}/${s.episodes}`, percent(s.success_rate)),
      card("crashed", s.crashed ?? 0),
      card("median wall time", seconds(s.median_wall_time), "per episode"),
      h("div", { class: "card wide" }, h("div", { class: "label" }, "median seconds per stage"),
        stageBars(s.median_stage_seconds))),
    reasons.length ? h("section", {}, h("h2", {}, "Why episodes failed"),
      h("table", { class: "grid reasons" }, h("thead", {}, h("tr", {}, h("th", { class: "num" }, "count"),
        h("th", {}, "stage"), h("th", {}, "reason"), h("th", {}, "seeds"))),
      h("tbody", {}, reasons.map((r) => h("tr", {}, h("td", { class: "num" }, r.count), h("td", {}, r.stage ?? ""),
        h("td", { class: "reason-full" }, r.reason),
        h("td", {}, r.seeds.map((seed) => [h("a", { href: episodeHash({ seed, run: "" }) }, seed), " "]))))))) : null,
    episodesTable(data),
  ];
}

function wilsonBar(cell) {
  const [low, high] = cell.wilson_95 ?? [null, null];
  if (typeof cell.success_rate !== "number" || low === null) return h("span", { class: "muted" }, "–");
  return h("span", { class: "ci", title: `Wilson 95%: ${percent(low)} – ${percent(high)}` },
    h("span", { class: "range", style: `left:${100 * low}%;width:${100 * (high - low)}%` }),
    h("span", { class: "point", style: `left:${100 * cell.success_rate}%` }));
}

function suiteView(data) {
  const failures = (cell) => Object.entries(cell.failures_by_stage ?? {})
    .map(([stage, n]) => `${stage} ${n}`).join(", ");
  const showCell = (cell) => {
    setTextFilter(cell.cell);
    render();
    document.getElementById("episodes")?.scrollIntoView();
  };
  const commit = data.commit ? ` · commit ${data.commit}${data.dirty ? " (dirty)" : ""}` : "";
  const interval = (cell) => (cell.wilson_95
    ? `${percent(cell.wilson_95[0], 0)} – ${percent(cell.wilson_95[1], 0)}` : "–");
  return [
    h("section", { class: "head" }, h("h1", {}, `Suite ${data.name}`),
      data.description ? h("p", {}, data.description) : null,
      h("div", { class: "muted path" }, data.path, commit, data.generated ? ` · report ${data.generated}` : "",
        data.complete === false ? " · incomplete: episodes missing" : "",
        data.report_url ? [" · ", h("a", { href: data.report_url }, "results.md")] : null)),
    h("section", {}, h("h2", {}, "Success by cell"),
      h("div", { class: "scroll" }, h("table", { class: "grid", id: "cells" }, h("thead", {}, h("tr", {},
        ["task", "configuration", "level", "variant"].map((k) => h("th", {}, k)),
        h("th", { class: "num" }, "episodes"), h("th", { class: "num" }, "success"),
        h("th", {}, "Wilson 95% interval"), h("th", {}, ""), h("th", { class: "num" }, "median wall"),
        h("th", {}, "failures by stage"))),
      h("tbody", {}, data.cells.map((cell) => h("tr", { class: "clickable", title: "show this cell's episodes",
        onclick: () => showCell(cell) },
        h("td", {}, cell.task), h("td", {}, cell.configuration), h("td", {}, cell.level), h("td", {}, cell.variant),
        h("td", { class: "num" }, cell.episodes),
        h("td", { class: "num" }, `${cell.successes}/${cell.episodes} (${percent(cell.success_rate, 0)})`),
        h("td", { class: "num ci-text" }, interval(cell)),
        h("td", {}, wilsonBar(cell)),
        h("td", { class: "num" }, seconds(cell.median_wall_time)),
        h("td", {}, failures(cell)))))))),
    data.plots.length ? h("section", { class: "plots" }, data.plots.map((p) =>
      h("figure", {}, h("a", { href: p.url, target: "_blank" }, h("img", { src: p.url, alt: p.title })),
        h("figcaption", {}, p.title)))) : null,
    data.attribution.length ? h("section", {}, h("h2", {}, "Failure attribution"),
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["cell", "failed", "blame counts"].map((k) => h("th", {}, k)))),
        h("tbody", {}, data.attribution.map((a) => h("tr", {}, h("td", {}, a.cell), h("td", { class: "num" }, a.failed),
          h("td", {}, Object.entries(a.counts ?? {}).map(([k, v]) => `${k} ${v}`).join(", "))))))) : null,
    episodesTable(data),
  ];
}

async function episodeView(query) {
  const seed = query.get("seed");
  const run = query.get("run") ?? "";
  const e = await getJSON(`/api/episode?${new URLSearchParams({ seed, run })}`);
  const row = e.row;
  const where = run ? `${run} · ` : "";
  const media = [];
  if (e.video_url) {
    media.push(h("figure", { class: "video" },
      h("video", { id: "episode-video", src: e.video_url, controls: true, muted: true, playsinline: true,
        preload: "auto" }),
      h("figcaption", {}, e.video_annotated ? "video with perception boxes drawn in (video.annotate=true)" : "video",
        " · ", h("a", { href: e.video_url, download: "" }, "MP4"))));
  } else {
    media.push(h("p", { class: "muted" }, "No video kept for this episode (video=all records every episode)."));
  }
  if (e.images.length) {
    media.push(h("h3", {}, "Perception images"), h("div", { class: "images" }, e.images.map((image) =>
      h("figure", {},
        h("a", { href: image.url, target: "_blank" }, h("img", { src: image.url, alt: image.name, loading: "lazy" })),
        h("figcaption", {}, image.name)))));
  } else {
    media.push(h("p", { class: "muted" }, "No perception images (annotate=true draws them)."));
  }
  const result = e.result ?? {};
  return [
    h("section", { class: "head" },
      h("h1", {}, `${where}seed ${row.seed} `, outcome(row)),
      h("div", {}, row.task, " · ", h("q", {}, row.instruction ?? "")),
      row.success ? null : h("div", { class: "banner", id: "failure" },
        h("b", {}, [row.failure_stage ?? row.suite_stage ?? "failed", row.failure_kind ? ` / ${row.failure_kind}` : "",
          row.failure_skill ? ` (${row.failure_skill})` : ""].join("")),
        ": ", row.failure_reason ?? "no reason recorded")),
    h("div", { class: "episode" },
      h("section", { class: "media" }, media,
        h("h3", {}, "Seconds per stage"), stageBars(row.latency),
        h("div", { class: "muted" }, `wall ${seconds(row.wall_time)} · ${result.env_steps ?? "?"} control steps · `,
          `${result.skill_calls ?? "?"} skill calls · ${row.replans ?? "?"} replans`,
          e.trace_url ? [" · ", h("a", { href: e.trace_url, target: "_blank" }, "trace JSONL")] : null)),
      h("section", { class: "trace" }, h("h2", {}, "Trace"),
        e.trace ? timeline(e.trace) : h("p", { class: "muted" }, "No trace kept for this episode."))),
  ];
}

function setCrumbs(parts) {
  crumbs.replaceChildren(...parts.flatMap((p) => [h("span", { class: "sep" }, "›"), p]));
}

async function render() {
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  try {
    folder ??= await getJSON("/api/folder");
    const home = h("a", { href: "#/" }, `${folder.kind} ${folder.name}`);
    if (path === "/episode") {
      const query = new URLSearchParams(search);
      setCrumbs([home, h("span", {}, `${query.get("run") ? `${query.get("run")} · ` : ""}seed ${query.get("seed")}`)]);
      main.replaceChildren(...(await episodeView(query)).filter(Boolean));
    } else {
      setCrumbs([home]);
      main.replaceChildren(...(folder.kind === "suite" ? suiteView(folder) : runView(folder)).filter(Boolean));
    }
    document.title = `fmrobot viewer · ${folder.name}`;
  } catch (error) {
    main.replaceChildren(h("p", { class: "banner", id: "error" }, String(error.message ?? error)));
  }
}

window.addEventListener("hashchange", () => { render(); window.scrollTo(0, 0); });
render();
