// In-page generation with ONNX Runtime Web (`--client_side` demo and `export.py --format web`).
// The page's own copy of the runtime (ort/, same origin) runs the export's model.onnx; the
// pix2pix contract is read from the metadata the model carries and checked before use; the
// canvas is converted as serving/codec.py and predict.py do: the model's input channels,
// v / 127.5 - 1, reflection padding (bottom, right) to the pad multiple, the output cropped
// back and written as (x + 1) * 127.5, rounded and clipped. Nothing is sent to a server.

const METADATA_NAME = "pix2pix_export";
const LUMA_WEIGHTS = [0.299, 0.587, 0.114];
// Threads when the page is cross-origin isolated (SharedArrayBuffer): the cores, at most 4.
const MAX_THREADS = 4;

export class WebModelError extends Error {}

function megabytes(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

// -- the model's pix2pix metadata (ONNX ModelProto.metadata_props, field 14) ----------

function readVarint(bytes, position) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (position >= bytes.length) throw new WebModelError("the file ends inside a field");
    const byte = bytes[position++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
}

// The (field number, payload) of each length-delimited field of a protobuf message.
function* lengthFields(bytes, start, end) {
  let position = start;
  while (position < end) {
    let tag;
    [tag, position] = readVarint(bytes, position);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType === 0) {
      [, position] = readVarint(bytes, position);
    } else if (wireType === 1) {
      position += 8;
    } else if (wireType === 5) {
      position += 4;
    } else if (wireType === 2) {
      let length;
      [length, position] = readVarint(bytes, position);
      if (position + length > end) throw new WebModelError("a field runs past the end of the file");
      yield [field, position, position + length];
      position += length;
    } else {
      throw new WebModelError(`wire type ${wireType} is not protobuf`);
    }
  }
}

export function onnxMetadata(bytes) {
  const decoder = new TextDecoder();
  const entries = {};
  for (const [field, start, end] of lengthFields(bytes, 0, bytes.length)) {
    if (field !== 14) continue;
    let key = null;
    let value = "";
    for (const [inner, from, to] of lengthFields(bytes, start, end)) {
      if (inner === 1) key = decoder.decode(bytes.subarray(from, to));
      if (inner === 2) value = decoder.decode(bytes.subarray(from, to));
    }
    if (key !== null) entries[key] = value;
  }
  return entries;
}

// The export's record, or a WebModelError saying why this file is no pix2pix export.
export function checkedRecord(bytes, name) {
  const redo = "export one with `python export.py --workdir RUN --format web`";
  let entries;
  try {
    entries = onnxMetadata(bytes);
  } catch (error) {
    throw new WebModelError(`${name} is not an ONNX model (${error.message}); ${redo}.`);
  }
  if (!(METADATA_NAME in entries)) {
    throw new WebModelError(
      `${name} is not a pix2pix export: it carries no ${METADATA_NAME} metadata (the ` +
        `contract of its input and output); ${redo}.`,
    );
  }
  let record;
  try {
    record = JSON.parse(entries[METADATA_NAME]);
  } catch {
    throw new WebModelError(`${name}: its ${METADATA_NAME} metadata is not JSON; ${redo}.`);
  }
  const contract = record.contract || {};
  const problems = [];
  if (contract.layout !== "NHWC") problems.push(`layout ${contract.layout}`);
  if (contract.dtype !== "float32") problems.push(`dtype ${contract.dtype}`);
  if (JSON.stringify(contract.range) !== "[-1,1]") problems.push(`range ${contract.range}`);
  if (contract.encoded_bytes !== false) problems.push("encoded bytes");
  for (const key of ["pad_multiple", "input_channels", "output_channels"]) {
    if (!Number.isInteger(record[key]) || record[key] < 1) problems.push(`${key} ${record[key]}`);
  }
  if (problems.length > 0) {
    throw new WebModelError(
      `${name}: its pix2pix contract is not the float NHWC one in [-1, 1] this page runs ` +
        `(${problems.join(", ")}); ${redo}.`,
    );
  }
  return record;
}

// -- the session ------------------------------------------------------------------

async function webgpuAdapter() {
  if (!navigator.gpu) return false;
  try {
    return (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

function threadCount() {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1));
}

function sessionFailure(error, modelBytes, backend) {
  const text = String(error && error.message ? error.message : error);
  if (/memory|RangeError|Aborted|allocat|bad_alloc|OOM/i.test(text)) {
    return new WebModelError(
      `ONNX Runtime Web (${backend}) cannot hold the ${megabytes(modelBytes)} model in this ` +
        `page's memory (${text.split("\n")[0]}); export it with --quantize float16, or use ` +
        "the server-side demo (python -m pix2pix_tf.demo --model ... without --client_side).",
    );
  }
  return new WebModelError(`ONNX Runtime Web (${backend}) cannot load the model: ${text.split("\n")[0]}`);
}

async function createSession(runtime, backend, modelBytes) {
  const ort = await import(new URL(runtime.dir + runtime.bundles[backend], document.baseURI).href);
  ort.env.wasm.wasmPaths = new URL(runtime.dir, document.baseURI).href;
  ort.env.wasm.numThreads = threadCount();
  ort.env.wasm.proxy = false;
  const session = await ort.InferenceSession.create(modelBytes, {
    executionProviders: [backend],
    graphOptimizationLevel: "all",
  });
  return { ort, session };
}

async function fetchModel(client) {
  const limit = client.max_model_bytes;
  const tooLarge = (bytes) =>
    new WebModelError(
      `The model is ${megabytes(bytes)}, over this page's limit of ${megabytes(limit)} for ` +
        "in-browser generation (WebAssembly gives the page 4 GB for the model, its working " +
        "copy and the activations); export it with --quantize float16, or use the " +
        "server-side demo (python -m pix2pix_tf.demo --model ... without --client_side).",
    );
  if (client.model_bytes > limit) throw tooLarge(client.model_bytes);
  const response = await fetch(client.model_url);
  if (!response.ok) {
    throw new WebModelError(`Cannot fetch ${client.model_url}: HTTP ${response.status}.`);
  }
  const length = Number(response.headers.get("Content-Length"));
  if (length > limit) throw tooLarge(length);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > limit) throw tooLarge(bytes.length);
  return bytes;
}

// Loads the runtime and the model; resolves to a generator {generate(canvas), backend,
// threads, record} or rejects with a WebModelError whose message the page shows.
export async function load(info) {
  const client = info.client_side;
  const modelBytes = await fetchModel(client);
  const record = checkedRecord(modelBytes, client.model_url.split("/").pop());
  const backends = [];
  if (client.runtime.bundles.webgpu && (await webgpuAdapter())) backends.push("webgpu");
  backends.push("wasm");
  let failure = null;
  for (const backend of backends) {
    let loaded;
    try {
      loaded = await createSession(client.runtime, backend, modelBytes);
    } catch (error) {
      failure = sessionFailure(error, modelBytes.length, backend);
      continue;
    }
    const { ort, session } = loaded;
    if (!session.inputNames.includes("images") || !session.outputNames.includes("generated")) {
      throw new WebModelError(
        `the model's input and output are ${session.inputNames} and ${session.outputNames}, ` +
          "not the `images` and `generated` of its pix2pix contract; export it again.",
      );
    }
    return {
      backend,
      threads: backend === "wasm" ? ort.env.wasm.numThreads : null,
      record,
      generate: (canvas) => generate(ort, session, record, client, canvas),
    };
  }
  throw failure;
}

// -- one generation ---------------------------------------------------------------

// 0, 1, ..., length - 1, length - 2, ..., 1, 0, 1, ... (serving/sizes.py's reflect_pad).
function mirrored(length, target) {
  const period = Math.max(2 * length - 2, 1);
  const indices = new Int32Array(target);
  for (let index = 0; index < target; index++) {
    const folded = index % period;
    indices[index] = folded < length ? folded : period - folded;
  }
  return indices;
}

// The canvas's RGBA pixels -> float32 [1, H', W', C_in] in [-1, 1], H' and W' padded.
function inputTensor(pixels, width, height, record, paddedHeight, paddedWidth) {
  const channels = record.input_channels;
  const levels = 2 ** (record.input_bits || 8) - 1;
  const rows = mirrored(height, paddedHeight);
  const columns = mirrored(width, paddedWidth);
  const data = new Float32Array(paddedHeight * paddedWidth * channels);
  let out = 0;
  for (let row = 0; row < paddedHeight; row++) {
    const rowOffset = rows[row] * width;
    for (let column = 0; column < paddedWidth; column++) {
      const offset = (rowOffset + columns[column]) * 4;
      const red = pixels[offset];
      const green = pixels[offset + 1];
      const blue = pixels[offset + 2];
      if (channels === 3) {
        data[out++] = red / 127.5 - 1;
        data[out++] = green / 127.5 - 1;
        data[out++] = blue / 127.5 - 1;
      } else if (red === green && green === blue) {
        data[out++] = red / 127.5 - 1;
      } else {
        // BT.601 luma rounded to the model's levels (codec.convert_channels).
        const luma =
          (LUMA_WEIGHTS[0] * red + LUMA_WEIGHTS[1] * green + LUMA_WEIGHTS[2] * blue) / 255;
        data[out++] = (2 * Math.round(luma * levels)) / levels - 1;
      }
    }
  }
  return data;
}

async function generate(ort, session, record, client, canvas) {
  const { width, height } = canvas;
  if (width * height > client.max_pixels) {
    throw new WebModelError(
      `the image is ${width}x${height} = ${width * height} pixels, over the bound of ` +
        `${client.max_pixels} pixels per image the model serves (export.py --max_pixels).`,
    );
  }
  const multiple = record.pad_multiple;
  const paddedHeight = Math.ceil(height / multiple) * multiple;
  const paddedWidth = Math.ceil(width / multiple) * multiple;
  const minimum = (record.contract && record.contract.min_side) || multiple;
  if (Math.min(paddedHeight, paddedWidth) < minimum) {
    throw new WebModelError(
      `${width}x${height} pixels: the generator needs each side padded to at least ${minimum}.`,
    );
  }
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const data = inputTensor(pixels, width, height, record, paddedHeight, paddedWidth);
  const started = performance.now();
  const input = new ort.Tensor("float32", data, [1, paddedHeight, paddedWidth, record.input_channels]);
  const outputs = await session.run({ images: input });
  const generated = await outputs.generated.getData();
  const milliseconds = performance.now() - started;
  const channels = record.output_channels;
  const image = new ImageData(width, height);
  for (let row = 0; row < height; row++) {
    for (let column = 0; column < width; column++) {
      const source = (row * paddedWidth + column) * channels;
      const target = (row * width + column) * 4;
      for (let channel = 0; channel < 3; channel++) {
        const value = generated[source + (channels === 3 ? channel : 0)];
        image.data[target + channel] = Math.min(255, Math.max(0, Math.round((value + 1) * 127.5)));
      }
      image.data[target + 3] = 255;
    }
  }
  const output = new OffscreenCanvas(width, height);
  output.getContext("2d").putImageData(image, 0, 0);
  return { blob: await output.convertToBlob({ type: "image/png" }), milliseconds };
}
