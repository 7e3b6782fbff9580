// @ts-check
// QG_Switch, QG_Select and QG_Gate take and give the pack's ANY type. On the canvas their value output takes
// the type of the first connected value input (its label shows it, e.g. IMAGE), so it only links where that
// type fits; with nothing connected it is ANY again. A second input of another type is refused with a
// message, and links from the output that no longer fit the new type are removed with a message.
import { app } from "../../scripts/app.js";
import { afterCurrentChange, notify, outputTargets, upstreamType } from "./graph.js";

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

/** The type the value output follows: the first connected value input's, skipping `except`. */
export function followedType(node, except = null) {
  for (const index of valueInputs(node)) {
    if (index === except) continue;
    const type = upstreamType(node, index);
    if (type) return type;
  }
  return null;
}

/** Give the value output (slot 0) the followed type and label; drop output links that no longer fit. */
export function followTypes(node, seen = new Set()) {
  if (!node?.graph || seen.has(node.id)) return;
  seen.add(node.id);
  const output = node.outputs?.[0];
  if (!output) return;
  const type = followedType(node) ?? ANY;
  output.type = type;
  output.label = type === ANY ? output.name : type;
  const dropped = [];
  const downstream = [];
  for (const { target, index, link } of outputTargets(node, 0)) {
    const input = target.inputs[index];
    if (type !== ANY && !fits(type, input.type)) dropped.push([target, index, input]);
    else {
      link.type = type;
      if (isFollower(target)) downstream.push(target);
    }
  }
  for (const [target, slot, input] of dropped) target.disconnectInput(slot);
  if (dropped.length) {
    const where = dropped.map(([t, , i]) => `${t.title} #${t.id}.${i.name} (${i.type})`).join(", ");
    notify(app, "warn", `${node.title} #${node.id}`, `output is now ${type}; removed links that do not take it: ${where}`);
  }
  for (const target of downstream) followTypes(target, seen);
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
      return true;
    };
    const changed = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function (side, index) {
      const result = changed?.apply(this, arguments);
      if (side === 1 /* LiteGraph.INPUT */ && isValue(this.inputs?.[index]?.name ?? "")) {
        afterCurrentChange(this, "qgTypePending", followTypes);
      }
      return result;
    };
  },
  async afterConfigureGraph() {
    for (const node of app.graph?.nodes ?? []) if (isFollower(node)) followTypes(node);
  },
});
