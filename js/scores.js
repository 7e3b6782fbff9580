// @ts-check
// qg.Scores: the per-image scores of a score node after it ran, from its UI output (qg_scores:
// [{metric, model, reduce, score, scores: [...]}], see nodes/score.py). Acts on the pack's nodes that
// output QG_SCORES. One state per node (node.properties.qg_scores, saved with the workflow) shown in a
// panel of real DOM text (js/node_views.js): the reduced score, then one line and bar per image.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { el, formatScore, otherTab, restoreResult, setResult, showPanel, stashResult, trackPrompts } from "./node_views.js";
import { runAfter } from "./graph.js";
import { isQualityGateNode } from "./ids.js";

const KEY = "qg_scores";
const PANEL = "qg_scores_panel";
const ROW = 15;
const MAX_ROWS = 8;

/** The lines shown for a report: the reduced score, then one per image (at most MAX_ROWS). */
export function scoreLines(report) {
  const values = report.scores ?? [];
  const lines = [`${report.metric} · ${report.reduce} ${formatScore(report.score)}`];
  values.slice(0, MAX_ROWS).forEach((v, i) => lines.push(`#${i} ${formatScore(v)}`));
  if (values.length > MAX_ROWS) lines.push(`… ${values.length - MAX_ROWS} more`);
  return lines;
}

/** The panel of a score report: text lines, each image's with a bar of its score (scale: 10 or the top). */
export function renderScores(node, report) {
  const values = report.scores ?? [];
  const top = Math.max(...values.filter((v) => typeof v === "number"), 10);
  const rows = scoreLines(report).map((line, row) => {
    const value = row > 0 ? values[row - 1] : null;
    const children = [el("span", { style: { position: "relative" }, textContent: line })];
    if (typeof value === "number" && top > 0) {
      const width = `calc((100% - 58px) * ${Math.max(0, Math.min(value / top, 1)).toFixed(4)})`;
      const color = value === report.score ? "rgba(76,175,80,0.45)" : "rgba(120,140,200,0.35)";
      children.unshift(el("span", { className: "qg-score-bar", style: { position: "absolute", left: "54px", top: "2px", bottom: "2px", width, background: color } }));
    }
    const style = { position: "relative", height: `${ROW}px`, lineHeight: `${ROW}px`, fontFamily: "monospace", color: row ? "#bbb" : "#ddd" };
    return el("div", { className: row ? "qg-score-line" : "qg-score-head", style }, children);
  });
  showPanel(node, PANEL, rows.length * ROW + 6, rows);
}

app.registerExtension({
  name: "qg.Scores",
  setup() {
    trackPrompts();
    // scores of a prompt queued from another workflow tab are kept in that tab, not shown on this graph
    api.addEventListener("executed", (event) => {
      const { node, output, prompt_id: promptId } = event.detail ?? {};
      const away = otherTab(promptId);
      const report = output?.qg_scores?.[0];
      if (away && report) stashResult(away, node, KEY, () => report);
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isQualityGateNode(nodeData.name) || !(nodeData.output ?? []).includes("QG_SCORES")) return;
    restoreResult(nodeType, KEY, renderScores);
    runAfter(nodeType.prototype, "onExecuted", function (message) {
      const report = message?.qg_scores?.[0];
      if (report && !otherTab()) setResult(this, KEY, report, renderScores);
    });
  },
});
