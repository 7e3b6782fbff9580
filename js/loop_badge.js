// @ts-check
// qg.LoopBadge: the progress of a retry loop on its QG_RetryEnd node, from the qg.loop websocket events the
// loop sends after each attempt (design.md §3: prompt_id, node, attempt, max_attempts, seed, score,
// best_score, best_attempt, done). One state per node (node.properties.qg_loop, saved with the workflow);
// two views over it (js/node_views.js): a badge above the title ("attempt 3/8 · best 6.21 · passed") and
// a panel with the same line, a chart of every attempt's score against the threshold and a table of the
// attempts (attempt, seed, score, passed). Event node ids are execution ids: a loop inside a subgraph
// ("12:5") shows on its inner node, and its subgraph nodes show a summary badge.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { COLORS, TEXT_COLORS, el, enclosingNodes, formatScore, nodeByExecutionId, otherTab, restoreResult, setBadge, setResult, showPanel, stashResult, trackPrompts } from "./node_views.js";

const END = "QG_RetryEnd";
const KEY = "qg_loop";
const PANEL = "qg_loop_panel";
const SUMMARY = "qg_loop_summary";
const CHART_W = 240;
const CHART_H = 64;
const ROW = 15;
const MAX_ROWS = 8; // table rows shown; the panel says how many more

/** The loop's threshold: the node's widget (null when the input is linked, the panel then shows no line). */
function threshold(node) {
  const value = node.widgets?.find((w) => w.name === "threshold")?.value;
  return typeof value === "number" ? value : null;
}

const passes = (score, limit) => limit !== null && typeof score === "number" && score >= limit;

/** The status line of a loop state: "attempt 3/8 · best 6.21" and, with a threshold, "· passed" (or, once
 * the loop is done without reaching it, "· not passed"). */
export function statusText(state) {
  const base = `attempt ${state.attempt}/${state.max_attempts} · best ${formatScore(state.best_score)}`;
  if (passes(state.best_score, state.threshold)) return `${base} · passed`;
  return state.done && state.threshold !== null ? `${base} · not passed` : base;
}

const statusKind = (state) => (passes(state.best_score, state.threshold) ? "pass" : state.done ? "fail" : "running");

/** The per-attempt chart: a dashed threshold line, one dot per attempt (green when it passes, the best one
 * larger). */
function chart(state) {
  const points = state.attempts.filter((a) => typeof a?.score === "number");
  const values = points.map((a) => a.score);
  const known = state.threshold === null ? values : [...values, state.threshold];
  const low = known.length ? Math.min(...known) : 0;
  const span = (known.length ? Math.max(...known) : 1) - low || 1;
  const lo = low - span * 0.15;
  const range = span * 1.3;
  const px = (i) => 6 + ((CHART_W - 12) * (i + 0.5)) / Math.max(state.max_attempts, 1);
  const py = (v) => CHART_H - 4 - ((CHART_H - 8) * (v - lo)) / range;
  const shapes = [el("rect", { x: 0, y: 0, width: CHART_W, height: CHART_H, fill: "rgba(0,0,0,0.25)", rx: 3 })];
  if (state.threshold !== null) {
    const y = py(state.threshold);
    shapes.push(el("line", { x1: 0, x2: CHART_W, y1: y, y2: y, stroke: "#d05050", "stroke-dasharray": "4 3" }));
  }
  if (points.length > 1) {
    const line = points.map((a) => `${px(a.attempt - 1)},${py(a.score)}`).join(" ");
    shapes.push(el("polyline", { points: line, fill: "none", stroke: "#888" }));
  }
  for (const a of points) {
    const fill = passes(a.score, state.threshold) ? "#4caf50" : "#e0a030";
    const r = a.attempt === state.best_attempt ? 4.5 : 3;
    shapes.push(el("circle", { cx: px(a.attempt - 1), cy: py(a.score), r, fill }, [el("title", { textContent: `attempt ${a.attempt}: ${formatScore(a.score)}` })]));
  }
  return el("svg", { viewBox: `0 0 ${CHART_W} ${CHART_H}`, width: "100%", height: CHART_H, className: "qg-loop-chart" }, shapes);
}

/** The table of attempts (the last MAX_ROWS, the best one bold). */
function table(state) {
  const cell = (text, tag = "td") => el(tag, { style: { padding: "0 6px 0 0", textAlign: "right" }, textContent: text });
  const shown = state.attempts.filter(Boolean).slice(-MAX_ROWS);
  const rows = shown.map((a) =>
    el("tr", { style: { fontWeight: a.attempt === state.best_attempt ? "bold" : "normal" } }, [
      cell(String(a.attempt)),
      cell(String(a.seed ?? "")),
      cell(formatScore(a.score)),
      cell(state.threshold === null ? "" : passes(a.score, state.threshold) ? "yes" : "no"),
    ]),
  );
  const head = el("tr", {}, ["attempt", "seed", "score", "passed"].map((t) => cell(t, "th")));
  return el("table", { className: "qg-loop-table", style: { borderCollapse: "collapse", fontVariantNumeric: "tabular-nums" } }, [head, ...rows]);
}

/** Both views of a loop state on `node`. */
export function renderLoop(node, state) {
  const text = statusText(state);
  setBadge(node, "loop", text, COLORS[statusKind(state)]);
  const shown = Math.min(state.attempts.filter(Boolean).length, MAX_ROWS);
  const caption = `score per attempt${state.threshold !== null ? ` · threshold ${formatScore(state.threshold)}` : ""}`;
  const status = el("div", { className: "qg-loop-status", style: { color: TEXT_COLORS[statusKind(state)], fontWeight: "bold" }, textContent: text });
  showPanel(node, PANEL, ROW * 2 + CHART_H + ROW * (shown + 1) + 8, [
    status,
    el("div", { className: "qg-loop-caption", style: { color: "#aaa" }, textContent: caption }),
    chart(state),
    table(state),
  ]);
}

/** The summary on a closed subgraph node that holds loops: the best of their best scores and the attempts. */
function renderSummary(node, id, state) {
  node.qgLoops ??= {};
  node.qgLoops[id] = state;
  const states = Object.values(node.qgLoops);
  const best = Math.max(...states.map((s) => (typeof s.best_score === "number" ? s.best_score : -Infinity)));
  const attempts = states.reduce((sum, s) => sum + s.attempt, 0);
  const passed = states.every((s) => passes(s.best_score, s.threshold));
  const text = `loop: best ${formatScore(Number.isFinite(best) ? best : null)} · ${attempts} attempt(s)`;
  const kind = passed ? "pass" : states.every((s) => s.done) ? "fail" : "running";
  setBadge(node, "loop", text, COLORS[kind]);
  if (globalThis.LiteGraph?.vueNodesMode) {
    // the Vue node header does not follow badge changes: the same line as DOM text in the node
    const line = el("div", { className: "qg-loop-summary", style: { color: TEXT_COLORS[kind], fontWeight: "bold" }, textContent: text });
    showPanel(node, SUMMARY, 18, [line]);
  }
}

/** The loop state after one qg.loop event (`previous`: the node's state so far, another prompt's is dropped). */
function nextState(previous, data, limit) {
  const state =
    previous?.prompt_id === data.prompt_id
      ? { ...previous, attempts: [...previous.attempts] }
      : { prompt_id: data.prompt_id, attempts: [] };
  Object.assign(state, {
    attempt: data.attempt,
    max_attempts: data.max_attempts,
    best_score: data.best_score,
    best_attempt: data.best_attempt,
    done: data.done,
    threshold: limit,
  });
  state.attempts[data.attempt - 1] = { attempt: data.attempt, seed: data.seed, score: data.score };
  return state;
}

function onLoopEvent(event) {
  const data = event.detail;
  if (!data) return;
  const away = otherTab(data.prompt_id);
  if (away) {
    // queued from another workflow tab: kept in that tab (shown when it is back on screen), not drawn here
    stashResult(away, data.node, KEY, (previous) => nextState(previous, data, data.threshold ?? null));
    return;
  }
  const node = nodeByExecutionId(data.node);
  if (node?.type !== END) return;
  const state = nextState(node.properties?.[KEY], data, threshold(node));
  setResult(node, KEY, state, renderLoop);
  for (const outer of enclosingNodes(data.node)) renderSummary(outer, String(data.node), state);
}

app.registerExtension({
  name: "qg.LoopBadge",
  setup() {
    trackPrompts();
    api.addEventListener("qg.loop", onLoopEvent);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === END) restoreResult(nodeType, KEY, renderLoop);
  },
});
