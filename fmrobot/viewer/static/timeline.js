// An episode's trace as a timeline: one item per event, in the order the runner wrote them.
import { h } from "./dom.js";

const call = (c) => (c
  ? `${c.skill}(${Object.entries(c.args ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")})` : "");

function keyValues(mapping) {
  return h("dl", { class: "kv" }, Object.entries(mapping ?? {}).map(([k, v]) =>
    [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]));
}

function violations(list) {
  if (!list?.length) return null;
  return h("ul", { class: "violations" }, list.map((v) =>
    h("li", {}, h("b", {}, v.rule),
      v.step_index !== null && v.step_index !== undefined ? ` (step ${v.step_index})` : "",
      v.repaired ? " repaired: " : ": ", v.reason)));
}

function helpRequest(help) {
  if (!help) return null;
  return h("div", { class: "help" }, h("div", {}, "asks: ", h("q", {}, help.question)),
    help.options?.length ? h("ol", { start: "0" }, help.options.map((o) => h("li", {}, o))) : null);
}

// Each renderer returns [kind class, title, body nodes].
const RENDER = {
  reset: (e) => ["info", `reset: ${e.task}, seed ${e.seed}`,
    [h("div", {}, h("q", {}, e.instruction), e.given_instruction ? " (given by the user)" : ""),
      e.goal && Object.keys(e.goal).length ? keyValues(e.goal) : null]],
  perception: (e) => {
    const objects = e.scene?.objects ?? [];
    const count = `${objects.length} object${objects.length === 1 ? "" : "s"}`;
    return ["info", `perception (${e.scene?.source ?? "?"}): ${count}`,
      [h("div", { class: "chips" }, objects.map((o) => h("span", { class: "chip", title: `camera ${o.camera ?? "?"}` },
        o.label, typeof o.score === "number" ? h("small", {}, ` ${o.score.toFixed(2)}`) : "")))]];
  },
  decision: (e) => {
    const d = e.decision ?? {};
    const title = d.help ? "decision: ask for help"
      : `decision: ${d.plan?.length ?? 0} step plan${d.final ? " (final)" : ""}`;
    const confidence = typeof d.confidence === "number" ? d.confidence.toFixed(2) : d.confidence;
    return ["decision", title, [
      d.plan?.length ? h("ol", { class: "plan", start: "0" }, d.plan.map((s) => h("li", {}, h("code", {}, s)))) : null,
      helpRequest(d.help),
      h("div", { class: "muted" }, `confidence ${confidence}`,
        d.rationale ? ` · ${d.rationale}` : ""),
    ]];
  },
  help: (e) => ["decision", "help", [h("div", {}, h("q", {}, e.question)),
    e.options?.length ? h("ol", { start: "0" }, e.options.map((o) => h("li", {}, o))) : null,
    h("div", {}, "answer: ", h("b", {}, e.answer ?? "none"))]],
  safety: (e) => {
    const v = e.verdict ?? {};
    const repaired = (v.violations ?? []).some((x) => x.repaired);
    return [v.allowed ? "ok" : "bad", `shield: ${v.allowed ? (repaired ? "allowed, repaired" : "allowed") : "refused"}`,
      [violations(v.violations)]];
  },
  skill: (e) => [e.status === "success" ? "ok" : "bad", `skill ${e.step_index ?? ""}: ${call(e.call)} → ${e.status}`,
    [e.reason ? h("div", { class: e.status === "success" ? "" : "step-reason" }, e.reason) : null,
      h("div", { class: "muted" }, `${e.env_steps ?? "?"} control steps`)]],
  home: (e) => ["muted", `home: ${call(e.call)} → ${e.status}`, [e.reason ? h("div", {}, e.reason) : null]],
  planning_error: (e) => ["bad", `planning error: ${e.type}`, [h("div", {}, e.error),
    e.replanning ? h("div", { class: "muted" }, "asking the planner again") : null]],
  simulation_error: (e) => ["bad", "simulation error", [h("div", {}, e.error)]],
  fault: (e) => ["fault", `fault ${e.fault}${e.step !== undefined && e.step !== null ? ` at step ${e.step}` : ""}`,
    [h("div", {}, e.effect)]],
  result: (e) => [e.success ? "ok" : "bad", e.success ? "result: success" : "result: failed", [
    e.failure ? h("div", { class: "failure-reason" }, e.failure) : null,
    h("div", { class: "chips" }, Object.entries(e.predicates ?? {}).map(([name, holds]) =>
      h("span", { class: `chip ${holds ? "yes" : "no"}` }, holds ? "✓ " : "✗ ", name))),
    violations(e.safety?.refusals),
  ]],
  crash: (e) => ["bad", "crash", [h("div", { class: "failure-reason" }, e.error)]],
};

export function timeline(events) {
  return h("ol", { class: "timeline", id: "timeline" }, events.map((event, index) => {
    const render = RENDER[event.event];
    const [kind, title, body] = render ? render(event)
      : ["muted", event.event ?? "event", [h("pre", {}, JSON.stringify(event, null, 1))]];
    return h("li", { class: `event ${kind}`, "data-event": event.event ?? "" },
      h("span", { class: "index" }, index), h("div", { class: "title" }, title), h("div", { class: "body" }, body));
  }));
}
