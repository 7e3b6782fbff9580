// @ts-check
// "Save as Quality Gate template": a command (command palette / Workflow menu where the frontend has them) and
// a canvas menu entry. It asks for a name (and a title and description), turns the graph into the API format
// the queue button sends, and saves it with PUT /qg/templates/{name}; the server's answer (or its error) is
// shown. Inputs chosen in the App Mode builder of newer frontends (workflow extra.linearData.inputs) are
// offered as named parameters: each chosen one becomes a QG_Param* node feeding that input in the template.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { notify } from "./graph.js";
import { QG_PARAM_IDS } from "./ids.js";
import { nodeByExecutionId } from "./node_views.js";

const COMMAND = "qg.SaveTemplate";
const LABEL = "Save as Quality Gate template";
const TEMPLATE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const INT_LIMIT = Number.MAX_SAFE_INTEGER; // JSON numbers beyond this lose digits in the browser
const FLOAT_LIMIT = 1e15;
const DIALOG = "qg-save-template";

const clamp = (value, low, high) => Math.min(Math.max(value, low), high);

/** Every node of a graph and of the subgraphs inside it (a subgraph used twice counts once). */
function everyNode(graph, seen = new Set()) {
  if (!graph || seen.has(graph)) return [];
  seen.add(graph);
  return (graph.nodes ?? []).flatMap((node) => [node, ...everyNode(node.subgraph, seen)]);
}

/** The inner widget(s) a subgraph node's input feeds: [{nodeId: execution id, widget}], following nested
 * subgraph nodes down to the real nodes (an input can feed several). */
function throughSubgraph(node, executionId, name) {
  const slot = node.subgraph?.inputs?.find((input) => input.name === name);
  const links = node.subgraph?.links;
  return (slot?.linkIds ?? []).flatMap((linkId) => {
    const link = links?.get?.(linkId) ?? links?.[linkId];
    const inner = link && node.subgraph.getNodeById(link.target_id);
    const input = inner?.inputs?.[link.target_slot];
    const widget = input?.widget?.name ?? input?.name;
    if (!inner || !widget) return [];
    const id = `${executionId}:${inner.id}`;
    return inner.subgraph ? throughSubgraph(inner, id, widget) : [{ nodeId: id, widget }];
  });
}

/** Where an App Mode entry points: 1.58.1 writes "<root graph id>:<node id>:<widget>" (URI-encoded parts),
 * older saves a plain node id. A widget of a subgraph node (one the frontend promoted from inside) stands for
 * the inner widget(s) it feeds: those become the targets, by execution id. Entries of other graphs are left
 * out. Returns a list of {nodeId, widget}. */
function appModeTargets(entry, graph) {
  let [id, widget] = entry;
  const parts = typeof id === "number" ? null : /^([^:]+):([^:]+):(.+)$/.exec(String(id));
  if (parts) {
    if (parts[1] !== graph?.id) return [];
    [id, widget] = [decodeURIComponent(parts[2]), decodeURIComponent(parts[3])];
  }
  const node = graph?.getNodeById?.(id) ?? graph?.getNodeById?.(Number(id));
  if (node?.subgraph) return throughSubgraph(node, String(id), widget);
  return [{ nodeId: String(id), widget }];
}

/** The App Mode builder's chosen inputs: [{nodeId, widget}] (empty where the frontend has no App Mode). */
export function appModeInputs(graph = app.rootGraph ?? app.graph) {
  const chosen = graph?.extra?.linearData?.inputs;
  if (!Array.isArray(chosen)) return [];
  return chosen
    .filter((entry) => Array.isArray(entry) && entry.length >= 2 && typeof entry[1] === "string")
    .flatMap((entry) => appModeTargets(entry, graph));
}

function inputSpec(node, widget) {
  const input = node?.constructor?.nodeData?.input ?? {};
  return input.required?.[widget] ?? input.optional?.[widget] ?? null;
}

/** The parameter node (class and inputs) that stands for one widget input, or null when none fits. */
export function paramFor(node, widget, value, name, description) {
  const spec = inputSpec(node, widget);
  if (!spec || Array.isArray(value)) return null; // unknown input, or already fed by a link
  const [kind, options = {}] = spec;
  const base = { name, value, description, required: false };
  const choices = Array.isArray(kind) ? kind : kind === "COMBO" ? options.options : null;
  if (choices) return { class_type: "QG_ParamChoice", inputs: { ...base, choices: choices.map(String).join("\n") } };
  if (kind === "INT") {
    const own = node.widgets?.find((w) => w.name === widget);
    const control = own?.linkedWidgets?.find((w) => w.name === "control_after_generate")?.value;
    if (/seed/i.test(widget) || options.control_after_generate || control !== undefined) {
      const policy = { randomize: "random", increment: "increment" }[control] ?? "fixed";
      return { class_type: "QG_ParamSeed", inputs: { ...base, policy } };
    }
    const min = clamp(options.min ?? -INT_LIMIT, -INT_LIMIT, INT_LIMIT);
    const max = clamp(options.max ?? INT_LIMIT, -INT_LIMIT, INT_LIMIT);
    return { class_type: "QG_ParamInt", inputs: { ...base, min, max, step: Math.max(1, options.step ?? 1) } };
  }
  if (kind === "FLOAT") {
    const min = clamp(options.min ?? -FLOAT_LIMIT, -FLOAT_LIMIT, FLOAT_LIMIT);
    const max = clamp(options.max ?? FLOAT_LIMIT, -FLOAT_LIMIT, FLOAT_LIMIT);
    return { class_type: "QG_ParamFloat", inputs: { ...base, min, max, step: options.step ?? 0.01 } };
  }
  if (kind === "STRING") return { class_type: "QG_ParamText", inputs: base };
  if (kind === "BOOLEAN") return { class_type: "QG_ParamBool", inputs: base };
  return null;
}

/** Replace each chosen widget value of the API prompt by a link from a new parameter node; returns how many. */
export function addParams(prompt, chosen) {
  let next = Math.max(0, ...Object.keys(prompt).map((id) => Number.parseInt(id, 10)).filter(Number.isFinite)) + 1;
  let added = 0;
  for (const { nodeId, widget, name } of chosen) {
    const entry = prompt[nodeId];
    const node = nodeByExecutionId(nodeId);
    if (!entry || !node) continue;
    const title = entry._meta?.title ?? node.title ?? entry.class_type;
    const param = paramFor(node, widget, entry.inputs?.[widget], name, `${title}: ${widget}`);
    if (!param) continue;
    while (prompt[String(next)]) next++;
    prompt[String(next)] = { ...param, _meta: { title: name } };
    entry.inputs[widget] = [String(next), 0];
    added++;
  }
  return added;
}

function suggestName() {
  const path = app.extensionManager?.workflow?.activeWorkflow?.filename ?? app.workflowManager?.activeWorkflow?.name ?? "";
  return String(path).replace(/\.json$/i, "").replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 64) || "my_template";
}

function paramNameFor(widget, taken) {
  let base = widget.replace(/[^A-Za-z0-9_]+/g, "_").replace(/^[^A-Za-z]+/, "") || "param";
  base = base.slice(0, 60);
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

function element(tag, attributes = {}, children = []) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "style") Object.assign(el.style, value);
    else if (key in el) el[key] = value;
    else el.setAttribute(key, value);
  }
  el.append(...children);
  return el;
}

let opened = 0;

/**
 * Show `form` in the frontend's own dialog (app.extensionManager.dialog.showExtensionDialog, title and close
 * button and Escape are the frontend's). That API takes a Vue component and an extension has no Vue `h`, so the
 * component renders nothing and puts the form beside its placeholder when mounted; it takes the form away when
 * the dialog unmounts, however it was closed. Returns a function that closes the dialog.
 */
function showInFrontendDialog(title, form, onClosed) {
  const dialog = app.extensionManager?.dialog;
  if (typeof dialog?.showExtensionDialog !== "function") {
    notify(app, "error", LABEL, "This ComfyUI frontend has no extension dialog API (app.extensionManager.dialog); update the frontend.");
    onClosed();
    return () => {};
  }
  // A key of its own per opening: one reused while the last dialog still fades out is not shown (1.32.9); the
  // store files it under this full key, which its closeDialog looks for.
  const key = `extension-${DIALOG}-${++opened}`;
  const component = {
    name: "QualityGateSaveTemplate",
    render: () => null,
    mounted() {
      this.$el.parentNode.insertBefore(form, this.$el);
      const first = form.querySelector("input");
      first?.focus();
      first?.select();
    },
    unmounted() {
      form.remove();
      onClosed();
    },
  };
  const shown = dialog.showExtensionDialog({ key, title, component, dialogComponentProps: { style: { width: "32rem" } } });
  return () => shown?.closeDialog?.();
}

/** Show the dialog; resolves with the save's outcome, or null when it is closed without saving. */
function openDialog() {
  const open = document.getElementById(DIALOG);
  if (open) {
    open.querySelector("input")?.focus(); // already open: the frontend brings its dialog to the front
    return Promise.resolve(null);
  }
  const graphNodes = everyNode(app.rootGraph ?? app.graph);
  const taken = new Set(
    graphNodes
      .filter((n) => QG_PARAM_IDS.includes(n.comfyClass ?? n.type ?? ""))
      .map((n) => String(n.widgets?.find((w) => w.name === "name")?.value ?? "")),
  );
  const rows = appModeInputs().map(({ nodeId, widget }) => {
    const node = nodeByExecutionId(nodeId);
    const check = element("input", { type: "checkbox", checked: true, className: "qg-param-use" });
    const name = element("input", { type: "text", value: paramNameFor(widget, taken), className: "qg-param-name" });
    const label = `${node?.title ?? "node"} #${nodeId} · ${widget}`;
    const row = element("label", { style: { display: "flex", gap: "6px", alignItems: "center" } }, [check, name, label]);
    row.dataset.nodeId = nodeId;
    row.dataset.widget = widget;
    return row;
  });
  const field = (id, value, tag = "input") =>
    element(tag, { id, value, style: { width: "100%", boxSizing: "border-box", margin: "2px 0 8px" } });
  const nameInput = field(`${DIALOG}-name`, suggestName());
  nameInput.setAttribute("autofocus", ""); // where the frontend's dialog puts the focus once it has opened
  const titleInput = field(`${DIALOG}-title`, "");
  const descriptionInput = field(`${DIALOG}-description`, "", "textarea");
  const status = element("div", { id: `${DIALOG}-status`, style: { whiteSpace: "pre-wrap", minHeight: "1em" } });
  const save = element("button", { id: `${DIALOG}-save`, textContent: "Save", className: "p-button p-component" });
  const cancel = element("button", {
    id: `${DIALOG}-cancel`,
    textContent: "Cancel",
    className: "p-button p-component p-button-secondary",
  });
  const sections = [
    element("div", { textContent: "Name (letters, digits, _ and -)" }),
    nameInput,
    element("div", { textContent: "Title (optional)" }),
    titleInput,
    element("div", { textContent: "Description (optional)" }),
    descriptionInput,
  ];
  if (rows.length) {
    sections.push(element("div", { textContent: "App Mode inputs to offer as named parameters:" }), ...rows);
  }
  sections.push(status, element("div", { style: { display: "flex", gap: "8px", marginTop: "8px" } }, [save, cancel]));
  const form = element("div", { id: DIALOG, style: { display: "flex", flexDirection: "column" } }, sections);

  return new Promise((resolve) => {
    let outcome = null;
    const close = showInFrontendDialog(LABEL, form, () => resolve(outcome));
    cancel.onclick = () => close();
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape" || e.key === "Tab") return; // the frontend's dialog closes on Escape, keeps Tab inside
      e.stopPropagation(); // keep the canvas shortcuts away from the text fields
      if (e.key === "Enter" && e.target instanceof HTMLInputElement && !save.disabled) save.onclick?.(e);
    });
    let replaceConfirmed = ""; // the name the user agreed to replace
    save.onclick = async () => {
      const name = nameInput.value.trim();
      const chosen = rows
        .filter((row) => row.querySelector(".qg-param-use").checked)
        .map((row) => ({
          nodeId: row.dataset.nodeId,
          widget: row.dataset.widget,
          name: row.querySelector(".qg-param-name").value.trim(),
        }));
      const problems = [];
      if (!TEMPLATE_NAME.test(name)) problems.push("The name must be 1 to 64 letters, digits, _ or -.");
      for (const { name: param } of chosen) {
        if (!PARAM_NAME.test(param)) problems.push(`Parameter name "${param}" must start with a letter (letters, digits, _).`);
      }
      if (problems.length) {
        status.textContent = problems.join("\n");
        return;
      }
      save.disabled = true;
      if (name !== replaceConfirmed && (await userTemplateExists(name))) {
        replaceConfirmed = name;
        save.disabled = false;
        status.textContent = `A template named "${name}" already exists. Press Save again to replace it.`;
        status.dataset.ok = "exists";
        return;
      }
      status.textContent = "Saving…";
      const saved = await saveTemplate(name, titleInput.value, descriptionInput.value, chosen);
      save.disabled = false;
      status.textContent = saved.message;
      status.dataset.ok = String(saved.ok);
      if (saved.ok) {
        outcome = saved;
        close();
      }
    };
  });
}

/** Whether the user already saved a template of this name (the pack's own are read-only: the server refuses). */
async function userTemplateExists(name) {
  try {
    const response = await api.fetchApi(`/qg/templates/${encodeURIComponent(name)}`);
    return response.ok && (await response.json()).source === "user";
  } catch {
    return false; // unreachable server: the save itself reports it
  }
}

/** PUT the current graph as template `name`; returns {ok, message, reply}. */
export async function saveTemplate(name, title, description, chosen = []) {
  let prompt;
  try {
    prompt = (await app.graphToPrompt()).output;
  } catch (error) {
    return { ok: false, message: `The graph could not be converted: ${error}` };
  }
  const added = addParams(prompt, chosen);
  const body = { workflow: prompt, title: title.trim(), description: description.trim() };
  let response;
  let reply = {};
  try {
    response = await api.fetchApi(`/qg/templates/${encodeURIComponent(name)}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    reply = await response.json().catch(() => ({}));
  } catch (error) {
    return { ok: false, message: `The server could not be reached: ${error}` };
  }
  if (!response.ok) {
    const details = Object.entries(reply.errors ?? {}).map(([key, messages]) => `${key}: ${[].concat(messages).join(" / ")}`);
    const message = [`Not saved (${response.status}): ${reply.error ?? response.statusText}`, ...details].join("\n");
    notify(app, "error", LABEL, message);
    return { ok: false, message, reply };
  }
  const fromAppMode = added ? ` (${added} from App Mode)` : "";
  const message = `Saved template "${reply.name}" with ${reply.params} parameter(s)${fromAppMode}.`;
  notify(app, "success", LABEL, message);
  return { ok: true, message, reply };
}

app.registerExtension({
  name: "qg.SaveTemplate",
  // the command returns at once: the dialog stays open until the user saves or cancels
  commands: [{ id: COMMAND, label: LABEL, icon: "pi pi-save", function: () => void openDialog() }],
  menuCommands: [{ path: ["Workflow"], commands: [COMMAND] }],
  getCanvasMenuItems() {
    return [null, { content: LABEL, callback: () => openDialog() }];
  },
});
