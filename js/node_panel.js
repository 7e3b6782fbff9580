// @ts-check
// A panel drawn on the canvas below a node's widgets, shared by the Quality Gate extensions that show run
// results on a node (no extension of its own). The node grows to make room and keeps that room when the
// frontend recomputes its size; drawing goes through onDrawForeground, which both tested frontends call
// with the context at the node's top-left corner (below the title).

import { runAfter } from "./graph.js";

const PAD = 6;

/** Give `node` a panel `height` px tall below its widgets (0 removes it) and redraw. */
export function reservePanel(node, height) {
  node.qgPanelHeight = height;
  const min = node.computeSize();
  node.setSize([Math.max(node.size[0], min[0]), Math.max(node.size[1], min[1])]);
  node.setDirtyCanvas?.(true, true);
}

/** Wrap computeSize and onDrawForeground of a node class so `draw(node, ctx, x, y, w, h)` fills the panel. */
export function addPanel(nodeType, draw) {
  const computeSize = nodeType.prototype.computeSize;
  nodeType.prototype.computeSize = function (...args) {
    const size = computeSize.apply(this, args);
    if (this.qgPanelHeight) size[1] += this.qgPanelHeight + PAD;
    return size;
  };
  runAfter(nodeType.prototype, "onDrawForeground", function (ctx) {
    if (this.qgPanelHeight && !this.flags?.collapsed) {
      const h = this.qgPanelHeight;
      ctx.save();
      draw(this, ctx, PAD, this.size[1] - h - PAD, this.size[0] - 2 * PAD, h);
      ctx.restore();
    }
  });
}

/** A score as text: two decimals, or "n/a" for null (NaN travels as null in the JSON events). */
export const formatScore = (/** @type {number|null|undefined} */ value) =>
  typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : "n/a";
