// @ts-check
// Views of a node's last run result that every renderer shows (no extension of its own). One state per
// node and feature, kept in node.properties (saved with the workflow, so a reload shows it again); two thin
// views over it:
// - a node badge (node.badges, an LGraphBadge): drawn above the title by the classic canvas renderer. The
//   Vue renderer ("Nodes 2.0") reads badges once when it mounts a node, so there the badge stays empty
//   and the panel below carries the same text;
// - a panel: a DOM widget (node.addDOMWidget) holding real DOM elements (text, a small SVG chart), which
//   the classic renderer places over the canvas and the Vue renderer mounts inside the node. Nothing is
//   drawn in onDrawForeground (the Vue renderer never calls it).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

/** A score as text: two decimals, or "n/a" for null (NaN travels as null in the JSON events). */
export const formatScore = (/** @type {number|null|undefined} */ value) =>
  typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : "n/a";

/** Badge backgrounds (white text) and the matching text colours on the dark node body. */
export const COLORS = Object.freeze({ pass: "#2e7d32", fail: "#b26a00", running: "#2f5fb8", warn: "#a33" });
export const TEXT_COLORS = Object.freeze({ pass: "#66bb6a", fail: "#f0a040", running: "#8fb0ff", warn: "#ff8080" });

const vueMode = () => !!globalThis.LiteGraph?.vueNodesMode;

/** The node an execution id names: "12" in the root graph, "12:5" node 5 inside subgraph node 12, and so on
 * for nested subgraphs (the ids the server's events carry). Null when any step is missing. */
export function nodeByExecutionId(id, root = app.rootGraph ?? app.graph) {
  const parts = String(id).split(":");
  let graph = root;
  let node = null;
  for (const [i, part] of parts.entries()) {
    node = graph?.getNodeById(part) ?? graph?.getNodeById(Number(part)) ?? null;
    if (!node) return null;
    if (i < parts.length - 1) graph = node.subgraph;
  }
  return node;
}

/** The subgraph nodes that lead to an execution id, outermost first ("12:5:3" -> nodes 12 and 12:5). */
export function enclosingNodes(id, root = app.rootGraph ?? app.graph) {
  const parts = String(id).split(":");
  return parts
    .slice(0, -1)
    .map((_, i) => nodeByExecutionId(parts.slice(0, i + 1).join(":"), root))
    .filter((node) => node !== null);
}

/** Show badge `key` of `node` with `text` (empty text hides it). */
export function setBadge(node, key, text, color = COLORS.running) {
  node.qgBadges ??= {};
  if (!Object.hasOwn(node.qgBadges, key)) {
    const Badge = globalThis.LGraphBadge;
    if (!Badge) return; // a frontend without node badges: the panel still shows the text
    node.badges ??= [];
    node.badges.push(() => {
      const spec = vueMode() ? null : node.qgBadges[key];
      return new Badge({ text: spec?.text ?? "", fgColor: "#fff", bgColor: spec?.color ?? COLORS.running });
    });
  }
  node.qgBadges[key] = text ? { text, color } : null;
  redraw(node);
}

/** Make an element: el("div", {className, style: {...}, title}, [children or text]). */
export function el(tag, attributes = {}, children = []) {
  const svg = ["svg", "line", "polyline", "circle", "text", "title", "rect"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "style") Object.assign(node.style, value);
    else if (key === "className") node.setAttribute("class", value);
    else if (key === "textContent") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  node.append(...children);
  return node;
}

/** The panel of `node` for feature `name` (a DOM widget added on first use), `height` px tall, filled with
 * `children`. */
export function showPanel(node, name, height, children) {
  let widget = node.widgets?.find((w) => w.name === name);
  if (!widget) {
    const element = el("div", {
      className: `qg-panel ${name}`,
      style: {
        font: "11px sans-serif",
        color: "var(--input-text, #ddd)",
        overflow: "hidden",
        userSelect: "text",
        padding: "2px 4px",
        boxSizing: "border-box",
      },
    });
    const size = () => Number(element.dataset.height) || 20;
    element.dataset.qgNode = String(node.id);
    widget = node.addDOMWidget(name, "qg-panel", element, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: size,
      getMaxHeight: size,
    });
    widget.serialize = false; // never a widgets_values entry: saved workflows and prompts stay the same
  }
  widget.element.dataset.height = String(height);
  widget.element.style.height = `${height}px`;
  widget.element.replaceChildren(...children);
  const min = node.computeSize();
  if (!vueMode()) node.setSize([Math.max(node.size[0], min[0]), Math.max(node.size[1], min[1])]);
  redraw(node);
  return widget.element;
}

/** Remove the panel of `node` for feature `name` (if shown); the node shrinks back in the classic renderer. */
export function hidePanel(node, name) {
  const widget = node.widgets?.find((w) => w.name === name);
  if (!widget) return;
  node.removeWidget(widget);
  if (!vueMode()) node.setSize([node.size[0], node.computeSize()[1]]);
  redraw(node);
}

function redraw(node) {
  node.setDirtyCanvas?.(true, true);
  app.canvas?.setDirty?.(true, true);
}

/** Tell the frontend that the open workflow changed, so it keeps the new state (it persists the open
 * workflow for a reload only when its change tracker sees a change, and that runs on user input). Only for a
 * node of the graph on screen: a result for another workflow tab is kept in that tab's nodes. */
function persist(node) {
  const root = node.graph?.rootGraph ?? node.graph;
  if (root && root === (app.rootGraph ?? app.graph)) app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
}

/** Keep `state` as the node's last result for `key` (saved in the workflow) and show it with `render`. */
export function setResult(node, key, state, render) {
  node.properties ??= {};
  node.properties[key] = state;
  render(node, state);
  persist(node);
}

/** Wrap a node class so a result saved in the workflow (node.properties[key]) is shown again when the node
 * is loaded (page reload, workflow tab switch, opening a saved workflow). */
export function restoreResult(nodeType, key, render) {
  const configure = nodeType.prototype.onConfigure;
  nodeType.prototype.onConfigure = function (...args) {
    const result = configure?.apply(this, args);
    const state = this.properties?.[key];
    if (state) queueMicrotask(() => this.graph && render(this, state));
    return result;
  };
}

// Workflow tabs: which open workflow queued each prompt, so that its progress and results show only in that
// tab. Prompts queued elsewhere (another page, an API caller) show on the graph on screen, as before.
const queuedFrom = new Map(); // prompt id -> the workflow (tab) it was queued from
let running = null; // the prompt ComfyUI is executing (execution_start)
const openWorkflow = () => app.extensionManager?.workflow?.activeWorkflow ?? null;

/** Record the workflow each prompt is queued from (api.queuePrompt, which the Run button calls), and follow
 * the running prompt. Once per page; nothing where the frontend has no workflow store (no tabs). */
export function trackPrompts() {
  if (api.qgTracksPrompts || !app.extensionManager?.workflow || typeof api.queuePrompt !== "function") return;
  api.qgTracksPrompts = true;
  const queue = api.queuePrompt.bind(api);
  api.queuePrompt = async (...args) => {
    const owner = openWorkflow();
    const reply = await queue(...args);
    if (reply?.prompt_id && owner) queuedFrom.set(reply.prompt_id, owner);
    return reply;
  };
  api.addEventListener("execution_start", (event) => {
    running = event.detail?.prompt_id ?? null;
  });
}

/** The workflow tab a prompt was queued from, when that is not the one on screen (else null). */
export function otherTab(promptId = running) {
  const owner = queuedFrom.get(promptId);
  return owner && owner !== openWorkflow() ? owner : null;
}

/** A result for a node of a workflow tab that is not on screen: written into the state that tab is kept in
 * (a root-level node's properties), so switching back shows it (restoreResult). `update(previous)` gives the
 * new state. Nodes inside subgraphs of such a tab are left as they were. */
export function stashResult(workflow, nodeId, key, update) {
  const state = workflow?.changeTracker?.activeState;
  const node = state?.nodes?.find((n) => String(n.id) === String(nodeId));
  if (!node) return;
  node.properties ??= {};
  node.properties[key] = update(node.properties[key]);
}
