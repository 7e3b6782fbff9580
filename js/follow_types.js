// @ts-check
// QG_Switch, QG_Select and QG_Gate take and give the pack's ANY type. On the canvas their value output takes
// the type of the connected value inputs (its label shows it, e.g. IMAGE), so it only links where that type
// fits; with nothing connected, or inputs of different types (an older workflow), it is ANY again. Linking
// an input of another type than the connected ones is refused with a message; when the user's link change
// gives the output a new type, output links that no longer fit are removed with a message. Loading a
// workflow never removes links: the output stays ANY when one of them would not fit.
import { app } from "../../scripts/app.js";
import { afterCurrentChange, notify, outputTargets, runAfter, upstreamType } from "./graph.js";

const FOLLOWERS = {
  QG_Switch: (name) => name === "on_true" || name === "on_false",
  QG_Select: (name) => /^input_\d+$/.test(name),
  QG_Gate: (name) => name === "value",
};
const ANY = "*";

const isFollower = (node) => Object.hasOwn(FOLLOWERS, node?.comfyClass ?? node?.type ?? "");
/** Indices of the node's value inputs (the ones whose type the output follows). */
const valueInputs = (node) =>
  (node.inputs ?? []).flatMap((input, index) => (FOLLOWERS[node.comfyClass ?? node.type](input.name) ? [index] : []));

function fits(type, target) {
  const LiteGraph = globalThis.LiteGraph;
  return LiteGraph?.isValidConnection ? LiteGraph.isValidConnection(type, target) : type === target || target === ANY;
}

/** The type the value output follows: the one type of the connected value inputs (skipping `except`), or
 * null when none is connected or they differ. */
export function followedType(node, except = null) {
  const types = new Set();
  for (const index of valueInputs(node)) {
    const type = index === except ? null : upstreamType(node, index);
    if (type) types.add(type);
  }
  return types.size === 1 ? [...types][0] : null;
}

/** Give the value output (slot 0) the followed type and label. Output links that no longer fit are removed
 * when `drop` (a user's link change), else (a workflow loading) the output stays ANY and keeps them. */
export function followTypes(node, drop = true, seen = new Set()) {
  if (!node?.graph || seen.has(node.id)) return;
  seen.add(node.id);
  const output = node.outputs?.[0];
  if (!output) return;
  const targets = outputTargets(node, 0);
  let type = followedType(node) ?? ANY;
  const misfits = type === ANY ? [] : targets.filter(({ target, index }) => !fits(type, target.inputs[index].type));
  if (misfits.length && !drop) type = ANY;
  output.type = type;
  output.label = type === ANY ? output.name : type;
  const dropping = new Set(drop ? misfits : []);
  const dropped = [...dropping].map(({ target, index }) => [target, index, target.inputs[index]]);
  const downstream = [];
  for (const entry of targets) {
    if (dropping.has(entry)) continue;
    const { target, link } = entry;
    link.type = type;
    if (isFollower(target)) downstream.push(target);
  }
  for (const [target, slot, input] of dropped) target.disconnectInput(slot);
  if (dropped.length) {
    const where = dropped.map(([t, , i]) => `${t.title} #${t.id}.${i.name} (${i.type})`).join(", ");
    notify(app, "warn", `${node.title} #${node.id}`, `output is now ${type}; removed links that do not take it: ${where}`);
  }
  for (const target of downstream) followTypes(target, drop, seen);
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "qg.FollowTypes",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!Object.hasOwn(FOLLOWERS, nodeData?.name)) return;
    const isValue = FOLLOWERS[nodeData.name];

    const connecting = nodeType.prototype.onConnectInput;
    nodeType.prototype.onConnectInput = function (slot, type, output, origin) {
      if (connecting?.apply(this, arguments) === false) return false;
      const input = this.inputs?.[slot];
      if (!input || !isValue(input.name) || !type || type === ANY) return true;
      const followed = followedType(this, slot);
      if (followed && !fits(String(type), followed)) {
        notify(app, "warn", `${this.title} #${this.id}`, `${input.name} takes ${followed} here (like the other inputs), not ${type}`);
        return false;
      }
      this.qgUserLink = true;
      return true;
    };
    runAfter(nodeType.prototype, "onConnectionsChange", function (side, index) {
      if (side === 1 /* LiteGraph.INPUT */ && isValue(this.inputs?.[index]?.name ?? "")) {
        afterCurrentChange(this, "qgTypePending", (node) => {
          const drop = !!node.qgUserLink; // a link the user just made (never while a workflow loads)
          node.qgUserLink = false;
          followTypes(node, drop);
        });
      }
    });
  },
  async afterConfigureGraph() {
    for (const node of app.graph?.nodes ?? []) if (isFollower(node)) followTypes(node, false);
  },
});
