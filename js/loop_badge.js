// @ts-check
// qg.LoopBadge: a live badge on QG_RetryEnd ("attempt 3/8 · best 6.21") and a small chart of every
// attempt's score against the node's threshold, both drawn from the qg.loop websocket events the loop sends
// after each attempt (design.md §3: prompt_id, node, attempt, max_attempts, seed, score, best_score,
// best_attempt, done). The state of the last run stays on the node (node.qgLoop) until the next run.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { addPanel, formatScore, reservePanel } from "./node_panel.js";

const END = "QG_RetryEnd";
const CHART_HEIGHT = 70;
const PASS = "#4caf50";
const FAIL = "#e0a030";
const LINE = "#d05050";

/** The badge text for a loop state. */
export const badgeText = (state) => `attempt ${state.attempt}/${state.max_attempts} · best ${formatScore(state.best_score)}`;

function threshold(node) {
  const value = node.widgets?.find((w) => w.name === "threshold")?.value;
  return typeof value === "number" ? value : null;
}

function findNode(id) {
  const graph = app.graph;
  const node = graph?.getNodeById(id) ?? graph?.getNodeById(Number(id));
  return node?.type === END ? node : null;
}

function onLoopEvent(event) {
  const data = event.detail;
  const node = data && findNode(data.node);
  if (!node) return;
  if (node.qgLoop?.prompt_id !== data.prompt_id) node.qgLoop = { prompt_id: data.prompt_id, scores: [] };
  const state = node.qgLoop;
  Object.assign(state, {
    attempt: data.attempt,
    max_attempts: data.max_attempts,
    best_score: data.best_score,
    best_attempt: data.best_attempt,
    done: data.done,
  });
  state.scores[data.attempt - 1] = data.score;
  reservePanel(node, CHART_HEIGHT);
}

function drawBadge(node, ctx) {
  const state = node.qgLoop;
  const text = badgeText(state);
  ctx.font = "12px sans-serif";
  const width = ctx.measureText(text).width + 14;
  const height = 18;
  const top = -(globalThis.LiteGraph?.NODE_TITLE_HEIGHT ?? 30) - height - 4;
  const limit = threshold(node);
  const passed = limit !== null && typeof state.best_score === "number" && state.best_score >= limit;
  ctx.fillStyle = passed ? PASS : state.done ? FAIL : "#3b6fd4";
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(node.size[0] - width, top, width, height, 9);
  else ctx.rect(node.size[0] - width, top, width, height);
  ctx.fill();
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(text, node.size[0] - width + 7, top + height / 2);
  return text;
}

function drawChart(node, ctx, x, y, w, h) {
  const state = node.qgLoop;
  const limit = threshold(node);
  const values = state.scores.filter((v) => typeof v === "number");
  const known = limit === null ? values : [...values, limit];
  const low = known.length ? Math.min(...known) : 0;
  const high = known.length ? Math.max(...known) : 1;
  const span = high - low || 1;
  const lo = low - span * 0.1;
  const range = span * 1.2;
  const px = (i) => x + 4 + ((w - 8) * (i + 0.5)) / Math.max(state.max_attempts, 1);
  const py = (v) => y + h - 2 - ((h - 14) * (v - lo)) / range;
  ctx.fillStyle = "rgba(0,0,0,0.25)";
  ctx.fillRect(x, y, w, h);
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "top";
  ctx.fillStyle = "#aaa";
  ctx.fillText(`score per attempt${limit !== null ? ` · threshold ${formatScore(limit)}` : ""}`, x + 4, y + 1);
  if (limit !== null) {
    ctx.strokeStyle = LINE;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(x, py(limit));
    ctx.lineTo(x + w, py(limit));
    ctx.stroke();
    ctx.setLineDash([]);
  }
  let points = 0;
  ctx.strokeStyle = "#888";
  ctx.beginPath();
  state.scores.forEach((v, i) => {
    if (typeof v !== "number") return;
    points ? ctx.lineTo(px(i), py(v)) : ctx.moveTo(px(i), py(v));
    points += 1;
  });
  ctx.stroke();
  state.scores.forEach((v, i) => {
    if (typeof v !== "number") return;
    ctx.fillStyle = limit !== null && v >= limit ? PASS : FAIL;
    ctx.beginPath();
    ctx.arc(px(i), py(v), i + 1 === state.best_attempt ? 4 : 2.5, 0, 2 * Math.PI);
    ctx.fill();
  });
  return { points, threshold: limit };
}

app.registerExtension({
  name: "qg.LoopBadge",
  setup() {
    api.addEventListener("qg.loop", onLoopEvent);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== END) return;
    addPanel(nodeType, (node, ctx, x, y, w, h) => {
      if (!node.qgLoop) return;
      const badge = drawBadge(node, ctx);
      const chart = drawChart(node, ctx, x, y, w, h);
      // What was drawn last, for the browser tests and for debugging.
      node.qgLoopDrawn = { badge, ...chart, attempt: node.qgLoop.attempt };
    });
  },
});
