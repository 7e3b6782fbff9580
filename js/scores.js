// @ts-check
// qg.Scores: the per-image scores of a score node drawn on the node after it ran, from its UI output
// (qg_scores: [{metric, model, reduce, score, scores: [...]}], see nodes/score.py). Acts on the pack's
// nodes that output QG_SCORES; the scores stay on the node (node.qgScores) until the next run.
import { app } from "../../scripts/app.js";
import { addPanel, formatScore, reservePanel } from "./node_panel.js";
import { runAfter } from "./graph.js";
import { isQualityGateNode } from "./ids.js";

const ROW = 14;
const MAX_ROWS = 8;

/** The lines shown for a report: the reduced score, then one per image (at most MAX_ROWS). */
export function scoreLines(report) {
  const values = report.scores ?? [];
  const lines = [`${report.metric} · ${report.reduce} ${formatScore(report.score)}`];
  values.slice(0, MAX_ROWS).forEach((v, i) => lines.push(`#${i} ${formatScore(v)}`));
  if (values.length > MAX_ROWS) lines.push(`… ${values.length - MAX_ROWS} more`);
  return lines;
}

function draw(node, ctx, x, y, w) {
  const report = node.qgScores;
  if (!report) return;
  const lines = scoreLines(report);
  const values = (report.scores ?? []).filter((v) => typeof v === "number");
  const top = Math.max(...values, 10);
  ctx.font = "11px monospace";
  ctx.textBaseline = "top";
  lines.forEach((line, row) => {
    const value = row > 0 ? report.scores?.[row - 1] : null;
    if (typeof value === "number" && top > 0) {
      ctx.fillStyle = value === report.score ? "rgba(76,175,80,0.45)" : "rgba(120,140,200,0.35)";
      ctx.fillRect(x + 54, y + row * ROW + 2, Math.max(0, (w - 58) * Math.min(value / top, 1)), ROW - 4);
    }
    ctx.fillStyle = row === 0 ? "#ddd" : "#bbb";
    ctx.fillText(line, x + 2, y + row * ROW);
  });
  node.qgScoresDrawn = lines;
}

app.registerExtension({
  name: "qg.Scores",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isQualityGateNode(nodeData.name) || !(nodeData.output ?? []).includes("QG_SCORES")) return;
    addPanel(nodeType, draw);
    runAfter(nodeType.prototype, "onExecuted", function (message) {
      const report = message?.qg_scores?.[0];
      if (report) {
        this.qgScores = report;
        reservePanel(this, scoreLines(report).length * ROW + 4);
      }
    });
  },
});
