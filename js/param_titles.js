// @ts-check
// Template parameter nodes (QG_Param*) are titled by their name widget, so the canvas reads like the
// template's parameter list, unless the user gave the node a title of their own: a title is automatic while
// it is empty, the node's default title, or the title this extension last gave it (kept in
// node.properties.qg_auto_title, so it survives a save and reload), and only an automatic title follows the name.
// Two parameter nodes with the same name (the server refuses such a template) are coloured red and show
// "⚠ duplicate name (also #N)" until one is renamed (js/node_views.js: a badge on the classic canvas, a
// line of DOM text in the Vue renderer); a message says so when it happens.
import { app } from "../../scripts/app.js";
import { notify, runAfter } from "./graph.js";
import { QG_PARAM_IDS } from "./ids.js";
import { COLORS, TEXT_COLORS, el, hidePanel, setBadge, showPanel } from "./node_views.js";

const isParam = (node) => QG_PARAM_IDS.includes(node?.comfyClass ?? node?.type ?? "");
const WARN_COLOR = "#a33";
const WARN_BGCOLOR = "#5a2222";
const DUPLICATE_PANEL = "qg_duplicate_panel";

const AUTO_TITLE = "qg_auto_title"; // node.properties: the title this extension last gave the node
const defaultTitles = new Map(); // node type -> its display name (the title a new node gets)

const nameOf = (node) => String(node.widgets?.find((w) => w.name === "name")?.value ?? "").trim();
const defaultTitle = (node) => defaultTitles.get(node.type) || node.constructor.title || node.type;

/** The title the name gives the node, or null when the user titled it by hand (that title is kept). */
function autoTitle(node) {
  const title = node.title ?? "";
  const given = node.properties?.[AUTO_TITLE];
  const automatic =
    !title ||
    title === given ||
    [defaultTitle(node), node.constructor.title, node.type].includes(title) ||
    (given === undefined && title === nameOf(node)); // saved before this property existed
  return automatic ? nameOf(node) || defaultTitle(node) : null;
}

/** The duplicate mark of a parameter node, in both renderers: a badge above the title (classic canvas) and
 * in the Vue renderer, whose node header does not follow badge changes, a line of text in the node. */
function showDuplicate(node) {
  const text = node.qgDuplicate ? `⚠ duplicate name (also ${node.qgDuplicate.map((id) => `#${id}`).join(", ")})` : "";
  if (node.qgBadges?.duplicate?.text !== text) setBadge(node, "duplicate", text, COLORS.warn);
  const vue = !!globalThis.LiteGraph?.vueNodesMode;
  const shown = node.widgets?.find((w) => w.name === DUPLICATE_PANEL)?.element?.textContent ?? "";
  if (!vue || !text) hidePanel(node, DUPLICATE_PANEL);
  else if (shown !== text) {
    const line = el("div", { className: "qg-duplicate", style: { color: TEXT_COLORS.warn, fontWeight: "bold" }, textContent: text });
    showPanel(node, DUPLICATE_PANEL, 18, [line]);
  }
}

/** Title every parameter node of the graph by its name and mark the duplicates. */
export function refreshParams(graph = app.graph) {
  const nodes = (graph?.nodes ?? []).filter(isParam);
  const owners = new Map();
  for (const node of nodes) {
    const name = nameOf(node);
    if (name) owners.set(name, [...(owners.get(name) ?? []), node]);
  }
  const fresh = new Set();
  for (const node of nodes) {
    const name = nameOf(node);
    const title = autoTitle(node);
    if (title !== null) {
      node.properties = node.properties ?? {};
      node.properties[AUTO_TITLE] = title;
      if (node.title !== title) node.title = title;
    }
    const others = (owners.get(name) ?? []).filter((n) => n !== node);
    const duplicate = others.length > 0;
    if (duplicate && !node.qgDuplicate) {
      fresh.add(name);
      node.qgColors = { color: node.color, bgcolor: node.bgcolor };
      node.color = WARN_COLOR;
      node.bgcolor = WARN_BGCOLOR;
    } else if (!duplicate && (node.qgDuplicate || node.color === WARN_COLOR)) {
      node.color = node.qgColors?.color;
      node.bgcolor = node.qgColors?.bgcolor;
    }
    node.qgDuplicate = duplicate ? others.map((n) => n.id) : null;
    showDuplicate(node);
  }
  for (const name of fresh) {
    const ids = owners.get(name).map((n) => `#${n.id}`).join(", ");
    notify(app, "warn", "Duplicate parameter name", `Parameter nodes ${ids} are all named "${name}"; rename all but one.`);
  }
  graph?.setDirtyCanvas?.(true, true);
  app.canvas?.setDirty?.(true, true);
}

app.registerExtension({
  name: "qg.ParamTitles",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!QG_PARAM_IDS.includes(nodeData?.name)) return;
    if (nodeData.display_name) defaultTitles.set(nodeData.name, nodeData.display_name);

    runAfter(nodeType.prototype, "onNodeCreated", function () {
      const widget = this.widgets?.find((w) => w.name === "name");
      if (widget) {
        const callback = widget.callback;
        widget.callback = function () {
          const out = callback?.apply(this, arguments);
          refreshParams();
          return out;
        };
      }
      queueMicrotask(() => refreshParams());
    });
    runAfter(nodeType.prototype, "onAdded", function () {
      queueMicrotask(() => refreshParams(this.graph ?? app.graph));
    });
    runAfter(nodeType.prototype, "onRemoved", function () {
      queueMicrotask(() => refreshParams());
    });
    runAfter(nodeType.prototype, "onWidgetChanged", function (name) {
      if (name === "name") refreshParams();
    });
    runAfter(nodeType.prototype, "onDrawForeground", function (ctx) {
      const title = autoTitle(this);
      if (title !== null && this.title !== title) refreshParams(this.graph);
    });
  },
  async afterConfigureGraph() {
    refreshParams();
  },
});
