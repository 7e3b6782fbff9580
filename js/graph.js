// @ts-check
// Small graph helpers shared by the Quality Gate extensions (no extension of its own). They use the node
// methods both tested frontends have (getInputLink, isInputConnected; 1.58.1 deprecates reading
// input.link and output.links directly).

/** The link into input `index` of `node`, or null. */
export function inputLink(node, index) {
  if (!node?.graph || !node.inputs?.[index]) return null;
  return node.getInputLink(index) ?? null;
}

/** Whether input `index` of `node` has a link. */
export const isLinked = (node, index) => !!node?.graph && node.isInputConnected(index);

/** The type of the output feeding input `index` ("*" or "" count as no type), or null when unlinked. */
export function upstreamType(node, index) {
  const link = inputLink(node, index);
  if (!link) return null;
  const origin = node.graph.getNodeById(link.origin_id);
  const type = origin?.outputs?.[link.origin_slot]?.type ?? link.type;
  return type && type !== "*" ? String(type) : null;
}

/** Every input fed by output `slot` of `node`: [{target, index, link}]. */
export function outputTargets(node, slot) {
  const found = [];
  for (const target of node.graph?.nodes ?? []) {
    (target.inputs ?? []).forEach((_, index) => {
      const link = inputLink(target, index);
      if (link && link.origin_id === node.id && link.origin_slot === slot) found.push({ target, index, link });
    });
  }
  return found;
}

/** A short message for the user: the frontend's toast where it has one, else the console. */
export function notify(app, severity, summary, detail) {
  const toast = app.extensionManager?.toast;
  if (toast?.add) toast.add({ severity, summary, detail, life: severity === "error" ? 10000 : 5000 });
  else (severity === "error" ? console.error : console.warn)(`${summary}: ${detail}`);
}

/** Run fn once after the current litegraph operation (a drag that disconnects then reconnects) finished. */
export function afterCurrentChange(node, key, fn) {
  if (node[key]) return;
  node[key] = true;
  queueMicrotask(() => {
    node[key] = false;
    if (node.graph) fn(node);
  });
}

/** Extend method `name` of a node class prototype: the original (if any) runs first and its result is
 * returned; then `extra` runs with the same `this` and arguments. */
export function runAfter(proto, name, extra) {
  const original = proto[name];
  proto[name] = function (...args) {
    const result = original?.apply(this, args);
    extra.apply(this, args);
    return result;
  };
}
