// The mask editor on FaceParse and SAMPrompt: shows the upstream Load Image picture with the parse overlay or the SAM
// mask, toggles FaceParse classes by clicking them, adds SAM points (click: positive, right/shift-click: negative)
// and boxes (drag). Its state is only the node's own widgets (FaceParse `classes`, SAMPrompt `prompts`), so saving
// and loading the workflow keeps it. Previews come from the pack's POST /remaskable/preview route, without queueing.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const EXTENSION = "ReMaskable.MaskEditor";
const BUTTON = "open mask editor";
const ROUTE = "/remaskable/preview";
const NODES = {
  "ReMaskable.FaceParse": { mode: "parse", model: "face_parser", state: "classes" },
  "ReMaskable.SAMPrompt": { mode: "sam", model: "sam_model", state: "prompts" },
};
const DRAG_PX = 5; // a press that moves farther than this draws a box instead of placing a point
const POINT_PX = 6;
const STYLE = `
.remaskable-editor-backdrop { position: fixed; inset: 0; z-index: 10000; background: rgba(0,0,0,.55);
  display: flex; align-items: center; justify-content: center; }
.remaskable-editor { background: var(--comfy-menu-bg, #202020); color: var(--fg-color, #ddd); border-radius: 8px;
  padding: 10px 12px; font: 13px sans-serif; display: flex; flex-direction: column; gap: 8px; max-width: 94vw; }
.remaskable-editor header { display: flex; gap: 8px; align-items: center; }
.remaskable-editor header b { flex: 1; }
.remaskable-editor button { background: var(--comfy-input-bg, #333); color: inherit; border: 1px solid #555;
  border-radius: 4px; padding: 3px 10px; cursor: pointer; }
.remaskable-editor canvas { cursor: crosshair; align-self: center; background: #111; }
.remaskable-editor .remaskable-status { min-height: 2.6em; max-width: 80vw; white-space: pre-wrap; opacity: .85; }
.remaskable-editor .remaskable-error { color: #ff7070; }`;

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

function linkedWidget(node, name) {
  return node.inputs?.some((input) => input.widget?.name === name && input.link != null);
}

// The node feeding `inputName`, through legacy Reroute nodes.
function upstream(node, inputName) {
  const slot = node.findInputSlot?.(inputName) ?? -1;
  let source = slot >= 0 ? node.getInputNode(slot) : null;
  for (let hops = 0; source?.type === "Reroute" && hops < 32; hops++) source = source.getInputNode(0);
  return source ?? null;
}

// {filename, subfolder, type} of the image a Load Image-like node shows: its `image` widget, e.g. "sub/a.png [input]".
function imageRef(node) {
  const value = widget(upstream(node, "image") ?? {}, "image")?.value;
  if (typeof value !== "string" || !value) return null;
  const match = value.match(/^(.*?)(?:\s*\[(input|temp|output)\])?$/);
  const path = match[1], slash = path.lastIndexOf("/");
  return { filename: path.slice(slash + 1), subfolder: slash >= 0 ? path.slice(0, slash) : "", type: match[2] ?? "input" };
}

function setWidget(node, name, value) {
  const w = widget(node, name);
  w.value = value;
  w.callback?.(value, app.canvas, node);
  node.setDirtyCanvas?.(true, true);
  app.graph.change?.();
}

function readPrompts(text) {
  if (!text || !text.trim()) return { points: [], boxes: [] };
  const data = JSON.parse(text);
  if (Array.isArray(data) || typeof data !== "object" || data === null) {
    throw new Error("'prompts' holds one prompt per image (a JSON list): the editor edits a single {points, boxes}.");
  }
  return { points: [...(data.points ?? [])], boxes: [...(data.boxes ?? [])] };
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${src}`));
    image.src = src;
  });
}

async function inflate(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// The mask PNG as a canvas tinted `rgb`, opacity following the mask (or its complement: `invert`).
async function tintedMask(base64, rgb, opacity, invert = false) {
  const mask = await loadImage(`data:image/png;base64,${base64}`);
  const canvas = document.createElement("canvas");
  canvas.width = mask.width;
  canvas.height = mask.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(mask, 0, 0);
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    const m = invert ? 255 - pixels.data[i] : pixels.data[i];
    pixels.data.set([rgb[0], rgb[1], rgb[2], Math.round(m * opacity)], i);
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

class MaskEditor {
  constructor(node) {
    this.node = node;
    this.spec = NODES[node.type];
    this.preview = null; // the last answer of the route
    this.layers = {}; // decoded images of that answer
    this.labels = null;
    this.drag = null;
    this.added = []; // "point" | "box" in the order this session added them, for Undo
    this.queue = Promise.resolve(); // requests run one after another, each reading the widgets as they are then
    this.pending = 0;
    this.build();
  }

  build() {
    this.backdrop = document.createElement("div");
    this.backdrop.className = "remaskable-editor-backdrop";
    const box = document.createElement("div");
    box.className = "remaskable-editor";
    box.setAttribute("role", "dialog");
    const header = document.createElement("header");
    const title = document.createElement("b");
    title.textContent = `${this.node.title}: ${this.spec.mode === "parse" ? "click a region to toggle its class"
      : "click: object point · right/shift-click: not-object point · drag: box · click a point: remove it"}`;
    header.append(title);
    if (this.spec.mode === "sam") {
      header.append(this.button("Undo", () => this.edit((s) => {
        const kind = this.added.pop() ?? (s.points.length ? "point" : "box");
        (kind === "box" ? s.boxes : s.points).pop();
      })));
      header.append(this.button("Clear", () => this.edit((s) => { s.points = []; s.boxes = []; this.added = []; })));
    }
    header.append(this.button("Close", () => this.close()));
    this.canvas = document.createElement("canvas");
    this.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    this.canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
    this.status = document.createElement("div");
    this.status.className = "remaskable-status";
    box.append(header, this.canvas, this.status);
    this.backdrop.append(box);
    this.backdrop.addEventListener("pointerdown", (e) => e.target === this.backdrop && this.close());
    this.onKey = (e) => e.key === "Escape" && this.close();
    document.addEventListener("keydown", this.onKey);
  }

  button(text, onClick) {
    const b = document.createElement("button");
    b.textContent = text;
    b.addEventListener("click", onClick);
    return b;
  }

  say(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("remaskable-error", isError);
  }

  async open() {
    document.body.append(this.backdrop);
    MaskEditor.current = this;
    this.image = imageRef(this.node);
    if (!this.image) return this.say("Connect a Load Image node to 'image' to use the editor.", true);
    if (linkedWidget(this.node, this.spec.state)) {
      return this.say(`'${this.spec.state}' comes from a link: the editor cannot change it.`, true);
    }
    const query = new URLSearchParams({ ...this.image, rand: Math.random().toString() });
    try {
      this.picture = await loadImage(api.apiURL(`/view?${query}`));
    } catch (error) {
      return this.say(`The image ${this.image.filename} cannot be shown: ${error.message}`, true);
    }
    const scale = Math.min(4, (window.innerWidth * 0.9) / this.picture.width, (window.innerHeight * 0.75) / this.picture.height);
    this.scale = scale;
    this.canvas.width = Math.round(this.picture.width * scale);
    this.canvas.height = Math.round(this.picture.height * scale);
    this.draw();
    this.refresh();
  }

  close() {
    document.removeEventListener("keydown", this.onKey);
    this.backdrop.remove();
    if (MaskEditor.current === this) MaskEditor.current = null;
  }

  // Settles once every request asked for so far has been answered (used by the browser tests).
  idle() {
    return this.queue;
  }

  // ---- SAM prompts, kept in the `prompts` widget --------------------------------------------------------------------
  prompts() {
    return readPrompts(widget(this.node, "prompts").value);
  }

  edit(change) {
    let state;
    try {
      state = this.prompts();
    } catch (error) {
      return this.say(error.message, true);
    }
    change(state);
    setWidget(this.node, "prompts", JSON.stringify({ points: state.points, boxes: state.boxes }));
    this.draw();
    this.refresh();
  }

  imagePoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * this.picture.width;
    const y = ((event.clientY - rect.top) / rect.height) * this.picture.height;
    const clamp = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
    return { x: clamp(x, this.picture.width), y: clamp(y, this.picture.height), sx: event.clientX, sy: event.clientY };
  }

  pointerDown(event) {
    if (!this.picture) return;
    event.preventDefault();
    this.canvas.setPointerCapture?.(event.pointerId);
    this.drag = { start: this.imagePoint(event), end: null, negative: event.button === 2 || event.shiftKey };
  }

  pointerMove(event) {
    if (!this.drag) return this.hover(event);
    const p = this.imagePoint(event);
    if (Math.hypot(p.sx - this.drag.start.sx, p.sy - this.drag.start.sy) > DRAG_PX) this.drag.end = p;
    this.draw();
  }

  pointerUp(event) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (this.spec.mode === "parse") return this.toggleAt(drag.start);
    if (drag.end && this.spec.mode === "sam") {
      const [a, b] = [drag.start, this.imagePoint(event)];
      const box = [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y)];
      if (box[2] > box[0] && box[3] > box[1]) return this.edit((s) => { s.boxes.push(box); this.added.push("box"); });
      return this.draw();
    }
    const near = (s) => s.points.findIndex((q) => Math.hypot(q.x - drag.start.x, q.y - drag.start.y) * this.scale <= POINT_PX);
    this.edit((s) => {
      const hit = near(s);
      if (hit >= 0) {
        s.points.splice(hit, 1);
      } else {
        s.points.push({ x: drag.start.x, y: drag.start.y, label: drag.negative ? 0 : 1 });
        this.added.push("point");
      }
    });
  }

  // ---- FaceParse classes, kept in the `classes` widget ---------------------------------------------------------------
  classAt(p) {
    if (!this.labels || this.preview?.mode !== "parse") return null;
    const { width, height } = this.preview;
    const x = Math.min(width - 1, Math.floor(p.x)), y = Math.min(height - 1, Math.floor(p.y));
    const index = this.labels[y * width + x];
    return index === this.preview.labels.unclaimed ? null : this.preview.class_names[index];
  }

  toggleAt(p) {
    const name = this.classAt(p);
    if (!name) return this.say("No class there (the parser makes no claim on that pixel).");
    this.refresh(name);
  }

  hover(event) {
    if (this.spec.mode !== "parse" || !this.preview) return;
    const name = this.classAt(this.imagePoint(event));
    const shown = name ? this.preview.display_names[this.preview.class_names.indexOf(name)] : "nothing";
    this.canvas.title = `${shown}${this.preview.chosen.includes(name) ? " (chosen)" : ""}`;
  }

  // ---- preview --------------------------------------------------------------------------------------------------------
  request(toggle) {
    const body = { image: this.image, mode: this.spec.mode };
    const model = widget(upstream(this.node, this.spec.model) ?? {}, "model_name")?.value;
    if (!model) throw new Error(`Connect the ${this.spec.mode === "parse" ? "Load Face Parser" : "Load SAM Model"} node to use the preview.`);
    if (this.spec.mode === "sam") return { ...body, sam_model: model, prompts: widget(this.node, "prompts").value ?? "" };
    Object.assign(body, { parser: model, classes: widget(this.node, "classes").value ?? "" });
    for (const name of ["preset", "mask_mode", "left_right"]) body[name] = widget(this.node, name)?.value;
    return toggle ? { ...body, toggle } : body;
  }

  refresh(toggle = null) {
    this.pending++;
    this.queue = this.queue.then(() => this.fetchPreview(toggle)).finally(() => this.pending--);
    return this.queue;
  }

  async fetchPreview(toggle) {
    if (!this.backdrop.isConnected) return;
    let body;
    try {
      body = this.request(toggle);
    } catch (error) {
      return this.say(error.message, true);
    }
    this.say(toggle ? `Toggling ${toggle}…` : "Previewing…");
    let answer;
    try {
      const response = await api.fetchApi(ROUTE, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      answer = await response.json();
      if (!response.ok) return this.say(answer.error ?? `The preview failed (HTTP ${response.status}).`, true);
    } catch (error) {
      return this.say(`The preview failed: ${error.message}`, true);
    }
    if (answer.mode === "parse" && answer.classes !== body.classes) setWidget(this.node, "classes", answer.classes);
    this.preview = answer;
    this.labels = answer.mode === "parse" ? await inflate(answer.labels.data) : null;
    this.layers = {
      overlay: answer.overlay ? await loadImage(`data:image/png;base64,${answer.overlay}`) : null,
      // parse: what is not chosen is dimmed; SAM: the mask is tinted blue
      mask: answer.mode === "parse" ? await tintedMask(answer.mask, [0, 0, 0], 0.6, true)
        : await tintedMask(answer.mask, [30, 144, 255], 0.5),
    };
    const summary = answer.mode === "parse" ? `Chosen: ${answer.chosen.join(", ") || "nothing"} (classes: "${answer.classes}")`
      : `SAM predicted IoU ${answer.score}`;
    this.say([summary, ...answer.messages].join("\n"));
    this.draw();
  }

  draw() {
    if (!this.picture) return;
    const ctx = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    ctx.drawImage(this.picture, 0, 0, width, height);
    if (this.layers.overlay) {
      ctx.globalAlpha = 0.45;
      ctx.drawImage(this.layers.overlay, 0, 0, width, height);
      ctx.globalAlpha = 1;
    }
    if (this.layers.mask) ctx.drawImage(this.layers.mask, 0, 0, width, height);
    if (this.spec.mode !== "sam") return;
    let state;
    try {
      state = this.prompts();
    } catch {
      return;
    }
    const s = this.scale;
    ctx.lineWidth = 2;
    for (const [x0, y0, x1, y1] of state.boxes) {
      ctx.strokeStyle = "#ffd400";
      ctx.strokeRect(x0 * s, y0 * s, (x1 - x0) * s, (y1 - y0) * s);
    }
    if (this.drag?.end) {
      const { start, end } = this.drag;
      ctx.setLineDash([5, 4]);
      ctx.strokeRect(start.x * s, start.y * s, (end.x - start.x) * s, (end.y - start.y) * s);
      ctx.setLineDash([]);
    }
    for (const p of state.points) {
      ctx.beginPath();
      ctx.arc(p.x * s, p.y * s, POINT_PX, 0, 2 * Math.PI);
      ctx.fillStyle = p.label === 0 ? "#ff3b3b" : "#2bd15a";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
  }
}
MaskEditor.current = null;

// The pack's js folder may be served twice (pyproject's `web` and WEB_DIRECTORY): register once.
if (!app.extensions?.some((e) => e.name === EXTENSION)) {
  const style = document.createElement("style");
  style.textContent = STYLE;
  document.head.append(style);
  window.ReMaskableMaskEditor = { open: (node) => new MaskEditor(node).open(), get current() { return MaskEditor.current; } };
  app.registerExtension({
    name: EXTENSION,
    async beforeRegisterNodeDef(nodeType, nodeData) {
      if (!(nodeData.name in NODES)) return;
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        const result = onNodeCreated?.apply(this, arguments);
        const button = this.addWidget("button", BUTTON, null, () => new MaskEditor(this).open());
        button.serialize = false; // not in the saved widgets_values
        button.options.serialize = false; // not in the queued prompt
        return result;
      };
    },
  });
}
