// @ts-check
// QG_Select shows input_1 .. input_N where N is one past the highest connected slot (never more than the
// node declares): connecting the last free slot adds the next one, disconnecting the last ones shrinks the
// node back. Slots keep their numbers (the index widget refers to them), so a gap stays a gap, and the
// backend sees the same input names as without this extension.
import { app } from "../../scripts/app.js";
import { afterCurrentChange, isLinked, runAfter } from "./graph.js";

const NODE = "QG_Select";
const SLOT = /^input_(\d+)$/;

const slotNumber = (input) => Number(SLOT.exec(input?.name ?? "")?.[1] ?? 0);

/** Make the input_ slots exactly input_1 .. input_N, N = highest connected + 1 (capped at `max`). */
export function fitSlots(node, max, type) {
  const inputs = node.inputs ?? [];
  let highest = 0;
  inputs.forEach((input, i) => {
    if (slotNumber(input) && isLinked(node, i)) highest = Math.max(highest, slotNumber(input));
  });
  const wanted = Math.min(highest + 1, max);
  for (let i = inputs.length - 1; i >= 0; i--) {
    if (slotNumber(inputs[i]) > wanted && !isLinked(node, i)) node.removeInput(i);
  }
  const present = new Set(node.inputs.map(slotNumber));
  for (let k = 1; k <= wanted; k++) if (!present.has(k)) node.addInput(`input_${k}`, type);
  node.setSize?.([node.size[0], node.computeSize()[1]]);
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "qg.SelectInputs",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE) return;
    const declared = Object.entries(nodeData.input?.optional ?? {}).filter(([name]) => SLOT.test(name));
    const max = declared.length;
    const type = declared[0]?.[1]?.[0] ?? "*";
    const fit = (node) => fitSlots(node, max, type);

    runAfter(nodeType.prototype, "onNodeCreated", function () {
      fit(this);
    });
    runAfter(nodeType.prototype, "onConfigure", function () {
      afterCurrentChange(this, "qgFitPending", fit);
    });
    runAfter(nodeType.prototype, "onConnectionsChange", function (side, index) {
      if (side === 1 /* LiteGraph.INPUT */ && slotNumber(this.inputs?.[index])) {
        afterCurrentChange(this, "qgFitPending", fit);
      }
    });
  },
});
