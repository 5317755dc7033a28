// The pix2pix demo page: paint on the canvas, send it to /api/generate (or, when info.json
// says client_side, run the model in the page: web.js), show the result.
// Brush strokes set whole pixels to the chosen colour (no antialiasing), so a label map
// painted here holds only palette colours, as the training label maps do.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("input-canvas");
const context = canvas.getContext("2d", { willReadFrequently: true });
const DEBOUNCE_MS = 300;
const MAX_UNDO = 30;

const state = {
  info: null,
  color: "#000000",
  erasing: false,
  undo: [],
  stroke: null, // { pixels: ImageData, last: [x, y] } while the pointer is down
  timer: null,
  busy: false,
  pending: false,
  outputUrl: null,
  generation: 0,
  edits: 0, // Changes to the canvas; the output records which one it was generated from.
  generator: null, // In-page generation (client_side): a promise of web.js's generator.
};

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text) {
  $("status").textContent = text;
}

function showNotice(message) {
  $("notice").textContent = message;
  $("notice").hidden = false;
}

async function errorText(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function rgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

// -- the canvas ----------------------------------------------------------------

function resetCanvas(width, height) {
  canvas.width = width;
  canvas.height = height;
  $("input-size").textContent = `${width}×${height}`;
}

function fillBackground() {
  context.fillStyle = state.info.palette.background;
  context.fillRect(0, 0, canvas.width, canvas.height);
}

function pushUndo() {
  state.undo.push(context.getImageData(0, 0, canvas.width, canvas.height));
  if (state.undo.length > MAX_UNDO) state.undo.shift();
}

function canvasPoint(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * canvas.width) / box.width,
    ((event.clientY - box.top) * canvas.height) / box.height,
  ];
}

function brushColor() {
  return state.erasing ? state.info.palette.background : state.color;
}

// Sets every pixel within the brush's radius of (x, y) to the colour.
function stamp(pixels, x, y, color) {
  const size = Number($("brush-size").value);
  const radius = size / 2;
  const [red, green, blue] = color;
  const x0 = Math.max(0, Math.floor(x - radius));
  const x1 = Math.min(pixels.width - 1, Math.ceil(x + radius));
  const y0 = Math.max(0, Math.floor(y - radius));
  const y1 = Math.min(pixels.height - 1, Math.ceil(y + radius));
  for (let row = y0; row <= y1; row++) {
    for (let column = x0; column <= x1; column++) {
      const dx = column + 0.5 - x;
      const dy = row + 0.5 - y;
      if (size > 1 && dx * dx + dy * dy > radius * radius) continue;
      const offset = (row * pixels.width + column) * 4;
      pixels.data[offset] = red;
      pixels.data[offset + 1] = green;
      pixels.data[offset + 2] = blue;
      pixels.data[offset + 3] = 255;
    }
  }
}

function strokeTo(point) {
  const { pixels, last } = state.stroke;
  const color = rgb(brushColor());
  const steps = Math.max(1, Math.ceil(Math.hypot(point[0] - last[0], point[1] - last[1])));
  for (let step = 1; step <= steps; step++) {
    const t = step / steps;
    stamp(pixels, last[0] + (point[0] - last[0]) * t, last[1] + (point[1] - last[1]) * t, color);
  }
  state.stroke.last = point;
  context.putImageData(pixels, 0, 0);
}

canvas.addEventListener("pointerdown", (event) => {
  if (!state.info || event.button !== 0) return;
  canvas.setPointerCapture(event.pointerId);
  pushUndo();
  const point = canvasPoint(event);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  state.stroke = { pixels, last: point };
  stamp(pixels, point[0], point[1], rgb(brushColor()));
  context.putImageData(pixels, 0, 0);
});

canvas.addEventListener("pointermove", (event) => {
  if (state.stroke) strokeTo(canvasPoint(event));
});

function endStroke() {
  if (!state.stroke) return;
  state.stroke = null;
  scheduleGenerate();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function undo() {
  const pixels = state.undo.pop();
  if (!pixels) return;
  if (pixels.width !== canvas.width || pixels.height !== canvas.height) {
    resetCanvas(pixels.width, pixels.height);
  }
  context.putImageData(pixels, 0, 0);
  scheduleGenerate();
}

$("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") {
    event.preventDefault();
    undo();
  }
});

$("clear").addEventListener("click", () => {
  pushUndo();
  fillBackground();
  scheduleGenerate();
});

// -- brushes -------------------------------------------------------------------

function selectColor(color, button) {
  state.color = color;
  state.erasing = false;
  $("eraser").setAttribute("aria-pressed", "false");
  for (const other of document.querySelectorAll(".swatch")) {
    other.setAttribute("aria-checked", String(other === button));
  }
}

function buildPalette(palette) {
  if (palette.kind === "free") {
    $("free-color").hidden = false;
    $("color-picker").addEventListener("input", (event) => selectColor(event.target.value, null));
    selectColor($("color-picker").value, null);
    return;
  }
  for (const { name, color } of palette.classes) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "swatch";
    button.setAttribute("role", "radio");
    button.dataset.color = color;
    button.dataset.name = name;
    button.title = `${name} ${color}`;
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.backgroundColor = color;
    button.append(chip, name);
    button.addEventListener("click", () => selectColor(color, button));
    $("palette").append(button);
  }
  const first = $("palette").querySelector(".swatch");
  selectColor(first.dataset.color, first);
}

$("eraser").addEventListener("click", () => {
  state.erasing = !state.erasing;
  $("eraser").setAttribute("aria-pressed", String(state.erasing));
});
$("brush-size").addEventListener("input", (event) => {
  $("brush-size-value").textContent = event.target.value;
});

// -- starting points -----------------------------------------------------------

async function drawImageFrom(blob) {
  const bitmap = await createImageBitmap(blob);
  pushUndo();
  resetCanvas(bitmap.width, bitmap.height);
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  markEdited();
  generate();
}

async function loadExample(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(await errorText(response));
    await drawImageFrom(await response.blob());
  } catch (error) {
    showError(`Cannot load that val input: ${error.message}`);
  }
}

function buildExamples(info) {
  if (info.examples_note) {
    $("examples-note").textContent = info.examples_note;
    $("examples-note").hidden = false;
  }
  for (const { name, url } of info.examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.title = name;
    const image = document.createElement("img");
    image.src = url;
    image.alt = name;
    button.append(image);
    button.addEventListener("click", () => loadExample(url));
    $("examples").append(button);
  }
}

$("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  const limit = state.info.max_upload_bytes;
  if (file.size > limit) {
    showError(
      `${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; uploads are limited to ` +
        `${limit / 2 ** 20} MiB.`,
    );
    return;
  }
  try {
    if (state.info.client_side) {
      await drawUpload(file);
    } else {
      const response = await fetch("api/upload", { method: "POST", body: file });
      if (!response.ok) throw new Error(await errorText(response));
      clearError();
      await drawImageFrom(await response.blob());
    }
  } catch (error) {
    showError(`${file.name} was refused: ${error.message}`);
  }
});

// Without a server: the browser decodes the file (upright, as its EXIF says).
async function drawUpload(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error("not an image this browser can read (PNG, JPEG, GIF, BMP ...).");
  }
  const { width, height } = bitmap;
  const bound = state.info.client_side.max_pixels;
  bitmap.close();
  if (width * height > bound) {
    throw new Error(
      `the image is ${width}x${height} = ${width * height} pixels, over the bound of ` +
        `${bound} pixels per image the model serves (export.py --max_pixels); send a smaller image.`,
    );
  }
  clearError();
  await drawImageFrom(file);
}

// -- generation ----------------------------------------------------------------

function markEdited() {
  state.edits += 1;
  document.body.dataset.edits = String(state.edits);
}

function scheduleGenerate() {
  markEdited();
  if (!$("auto").checked) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(generate, DEBOUNCE_MS);
}

function showOutput(blob, edits) {
  const url = URL.createObjectURL(blob);
  const image = $("output");
  image.onload = () => {
    state.generation += 1;
    image.dataset.generation = String(state.generation);
    image.dataset.edits = String(edits);
    $("output-size").textContent = `${image.naturalWidth}×${image.naturalHeight}`;
    if (state.outputUrl) URL.revokeObjectURL(state.outputUrl);
    state.outputUrl = url;
    $("download").href = url;
    $("download").setAttribute("aria-disabled", "false");
  };
  image.src = url;
}

async function generate() {
  clearTimeout(state.timer);
  if (state.busy) {
    state.pending = true; // One more request once this one is back: the latest painting.
    return;
  }
  state.busy = true;
  setStatus("Generating…");
  const started = performance.now();
  try {
    const edits = state.edits;
    if (state.generator) {
      const generator = await state.generator;
      const { blob } = await generator.generate(canvas);
      showOutput(blob, edits);
      clearError();
      const how = generator.threads ? `${generator.backend}, ${threadText(generator.threads)}` : generator.backend;
      setStatus(`Generated in the browser in ${Math.round(performance.now() - started)} ms (${how}).`);
    } else {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
      const response = await fetch("api/generate", {
        method: "POST",
        body: blob,
        headers: { "Content-Type": "image/png" },
      });
      if (!response.ok) throw new Error(await errorText(response));
      showOutput(await response.blob(), edits);
      clearError();
      setStatus(`Generated in ${Math.round(performance.now() - started)} ms.`);
    }
  } catch (error) {
    showError(`Generation failed: ${error.message}`);
    setStatus("");
  } finally {
    state.busy = false;
    if (state.pending) {
      state.pending = false;
      generate();
    }
  }
}
$("generate").addEventListener("click", generate);

// -- in-page generation (client_side) ----------------------------------------------

function threadText(threads) {
  return threads === 1 ? "1 thread" : `${threads} threads`;
}

function startWebGenerator(info) {
  const runtime = info.client_side.runtime;
  $("runtime").textContent = `Generates in this browser: ONNX Runtime Web ${runtime.version}, loading…`;
  $("runtime").hidden = false;
  state.generator = import("./web.js").then((web) => web.load(info));
  state.generator.then(
    (generator) => {
      document.body.dataset.backend = generator.backend;
      const threads = generator.threads ? `, ${threadText(generator.threads)}` : "";
      $("runtime").textContent =
        `Generates in this browser: ONNX Runtime Web ${runtime.version}, ${generator.backend}${threads}.`;
      if (generator.backend === "wasm" && !globalThis.crossOriginIsolated) {
        showNotice(
          "WebAssembly runs on one thread: this page is not cross-origin isolated, so the " +
            "browser gives it no SharedArrayBuffer. Serve it with the headers " +
            "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: " +
            "require-corp (python -m pix2pix_tf.demo --client_side does) for up to " +
            `${Math.min(4, navigator.hardwareConcurrency || 1)} threads.`,
        );
      }
    },
    (error) => {
      document.body.dataset.backend = "none";
      $("runtime").textContent = "In-browser generation is unavailable.";
      showError(error.message);
    },
  );
}

// -- start ---------------------------------------------------------------------

async function start() {
  try {
    const response = await fetch("info.json");
    if (!response.ok) throw new Error(await errorText(response));
    state.info = await response.json();
  } catch (error) {
    showError(`Cannot reach the demo server: ${error.message}`);
    return;
  }
  const info = state.info;
  $("model").textContent = info.model;
  $("max-upload").textContent = `${info.max_upload_bytes / 2 ** 20} MiB`;
  if (info.client_side) startWebGenerator(info);
  buildPalette(info.palette);
  buildExamples(info);
  resetCanvas(info.canvas.width, info.canvas.height);
  fillBackground();
  markEdited();
  document.body.dataset.ready = "true";
  if (info.examples.length > 0) await loadExample(info.examples[0].url);
}

start();
