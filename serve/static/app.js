// The page: ask the API about a file or a recording, show its answer and draw its figure.
// Everything is local: no library, no CDN. Recording captures PCM with Web Audio and sends a
// 16-bit WAV, which the server reads like any file (Chrome's MediaRecorder would give
// WebM/Opus, which libsndfile cannot read).
"use strict";

const $ = (id) => document.getElementById(id);
let model = null; // GET /v1/model
let recorder = null; // the recording in progress

function showError(sentence) {
  $("error").textContent = sentence;
  $("error").hidden = !sentence;
}

function sentence(text) {
  text = String(text).trim();
  return /[.!?]$/.test(text) ? text : text + ".";
}

async function api(path, options = {}) {
  const headers = {};
  const token = $("token").value;
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) $("token-line").hidden = false;
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail
      : `the server answered ${response.status} ${response.statusText}`;
    throw new Error(sentence(detail));
  }
  return body;
}

async function loadModel() {
  try {
    model = await api("/v1/model");
  } catch (error) {
    $("model").textContent = "";
    showError(error.message);
    return;
  }
  const test = model.test;
  const score = test === null ? "never scored on a test set"
    : `test balanced accuracy ${test.value.toFixed(3)}` +
      (test.interval ? ` (95% interval ${test.interval[0].toFixed(2)} to ${test.interval[1].toFixed(2)})` : "") +
      `, chance ${(1 / model.accents.length).toFixed(2)}`;
  $("model").textContent = `Run ${model.run}, a ${model.family} model on ${model.encoder.name}: ` +
    `${score}. Up to ${model.limits.max_seconds} s of audio.`;
  $("model").dataset.testScore = test === null ? "" : test.value;
  // The run's own evidence: a test interval that holds chance has shown nothing.
  $("guessing").hidden = test === null || model.beats_chance;
  $("guessing").textContent = "This model has not been shown to beat guessing: its test " +
    "interval includes chance.";
  showError("");
}

async function ask(blob, name) {
  showError("");
  $("status").textContent = "Listening to " + name + "…";
  const form = new FormData();
  form.append("file", blob, name);
  try {
    show(await api("/v1/predict?figure=true", { method: "POST", body: form }));
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = "";
    $("result").hidden = true;
    showError(error.message);
  }
}

function show(result) {
  const classes = Object.keys(result.probabilities);
  const ranked = classes.slice().sort((a, b) => result.probabilities[b] - result.probabilities[a]);
  const accents = classes.slice(0, -1); // "Not a speech" is the last class, never the answer
  $("accent").textContent = result.accent;
  const speechFrames = result.frames - result.non_speech_frames;
  // "How sure" is the server's sentence on the run's own test evidence (brogue.inference.evidence);
  // a label appears only where that evidence earns it.
  const sure = result.how_sure;
  $("sureness").textContent = (sure.label ? sure.label + ": " : "") + sure.sentence +
    ` Chance is ${(1 / accents.length).toFixed(2)}; heard over ${speechFrames} speech frames of ` +
    `${result.frames} in ${result.seconds.toFixed(1)} s.`;
  $("seen").hidden = !result.seen_in_training;
  $("seen").textContent = result.seen_in_training ? result.seen_note : "";
  if (result.pooled_over !== "speech frames") {
    showError("No speech was heard, so this answer pools every frame and means little.");
  }
  const body = $("probabilities").tBodies[0];
  body.replaceChildren(...ranked.map((name) => {
    const row = document.createElement("tr");
    const p = result.probabilities[name];
    row.dataset.class = name;
    row.dataset.probability = p;
    if (!accents.includes(name)) row.className = "not-accent";
    row.innerHTML = `<td></td><td class="value">${p.toFixed(3)}</td>` +
      `<td><span class="bar" style="width:${(p * 12).toFixed(2)}rem"></span></td>`;
    row.cells[0].textContent = name;
    return row;
  }));
  $("result").hidden = false;
  drawFigure($("figure"), result, ranked);
  $("caption").textContent = figureCaption(result.figure);
}

// --- recording: Web Audio PCM -> 16-bit WAV ---

async function startRecording() {
  showError("");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false,
    } });
  } catch (error) {
    showError("The microphone is not available: " + sentence(error.message));
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("recorder.js");
  const source = context.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(context, "capture");
  const blocks = [];
  capture.port.onmessage = (event) => blocks.push(event.data);
  const silent = context.createGain(); // pulls the graph without playing the voice back
  silent.gain.value = 0;
  source.connect(capture).connect(silent).connect(context.destination);
  const started = performance.now();
  const limit = model ? model.limits.max_seconds : 60;
  const timer = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    $("status").textContent = `Recording ${seconds.toFixed(1)} s (stop, or it stops at ${limit} s)`;
    if (seconds >= limit - 0.5) stopRecording();
  }, 100);
  recorder = { stream, context, blocks, timer };
  $("record").textContent = "Stop and ask";
  $("record").classList.add("recording");
}

async function stopRecording() {
  const { stream, context, blocks, timer } = recorder;
  recorder = null;
  clearInterval(timer);
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  $("record").textContent = "Record from the microphone";
  $("record").classList.remove("recording");
  const recording = wav(blocks, context.sampleRate);
  if ($("saved").href) URL.revokeObjectURL($("saved").href);
  $("saved").href = URL.createObjectURL(recording);
  $("saved").hidden = false;
  await ask(recording, "recording.wav");
}

function wav(blocks, rate) {
  const count = blocks.reduce((sum, block) => sum + block.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * count));
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * count, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * count, true);
  let offset = 44;
  for (const block of blocks) {
    for (const x of block) {
      view.setInt16(offset, Math.max(-32768, Math.min(32767, Math.round(x * 32768))), true);
      offset += 2;
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

// --- the figure: waveform, log-mel and frame probabilities on one time axis ---

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

function viridis(t) {
  const x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  return VIRIDIS[i].map((c, k) => c + (VIRIDIS[i + 1][k] - c) * (x - i));
}

// The words under the figure, on the encoder's own grid (YAMNet 0.96 s every 0.48 s, GE2E
// 1.6 s every 0.77 s) and with the log-mel only where the encoder has one.
function figureCaption(figure) {
  const { log_mel: logMel, frames } = figure;
  const mel = logMel ? " the log-mel spectrogram the encoder heard," : "";
  return `Top to bottom, on one time axis: the waveform the model heard (16 kHz mono),${mel} ` +
    `and each class's probability in every ${frames.window_seconds} s frame, one every ` +
    `${frames.hop_seconds} s, each frame heard alone through the run's calibration (darker ` +
    `is more probable, scale at the top right; frames without speech are hatched and marked ` +
    `below).`;
}

function drawFigure(canvas, result, ranked) {
  const { waveform, log_mel: logMel, frames } = result.figure;
  const scale = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * scale;
  canvas.height = canvas.clientHeight * scale;
  const g = canvas.getContext("2d");
  g.setTransform(scale, 0, 0, scale, 0, 0);
  const width = canvas.clientWidth, height = canvas.clientHeight;
  const left = 110, right = width - 10, axis = 22;
  const rowHeight = 16;
  const perFrame = result.frame_probabilities; // null where the family has no frame answer
  const probsHeight = perFrame ? rowHeight * ranked.length : rowHeight;
  // An encoder without a log-mel (GE2E, hf:) gets no empty panel: the waveform takes its room.
  const panels = logMel ? 2 : 1;
  const band = (height - axis - probsHeight - 14 - 8 * panels) / panels;
  const rows = { wave: [8, band], mel: [16 + band, band],
                 probs: [8 + 8 * panels + panels * band, probsHeight] };
  // A cell belongs to the window that starts at index x hop: centred on its window's middle.
  const cellLeft = (hop, window) => window / 2 - hop / 2;
  const frameEnd = cellLeft(frames.hop_seconds, frames.window_seconds) +
    result.frames * frames.hop_seconds;
  const duration = Math.max(result.seconds, frameEnd);
  const x = (seconds) => left + (right - left) * seconds / duration;
  g.clearRect(0, 0, width, height);
  g.font = "12px system-ui, sans-serif";
  g.fillStyle = "#222";
  g.textBaseline = "middle";

  // waveform outline
  const [waveTop, waveHeight] = rows.wave;
  const middle = waveTop + waveHeight / 2;
  g.strokeStyle = "#2b6cb0";
  g.beginPath();
  waveform.min.forEach((low, i) => {
    const at = x(i * waveform.hop_seconds);
    g.moveTo(at, middle - waveform.max[i] * waveHeight / 2);
    g.lineTo(at, middle - low * waveHeight / 2 + 0.5);
  });
  g.stroke();
  g.fillText("waveform", 8, middle);

  // log-mel, low bands at the bottom; an encoder without one (GE2E, hf:) leaves the band empty
  const [melTop, melHeight] = rows.mel;
  const mel = logMel ? logMel.rows : [];
  let low = Infinity, high = -Infinity;
  for (const row of mel) for (const value of row) { low = Math.min(low, value); high = Math.max(high, value); }
  const bands = mel.length ? mel[0].length : 0;
  const image = new ImageData(Math.max(mel.length, 1), Math.max(bands, 1));
  mel.forEach((row, t) => row.forEach((value, b) => {
    const [r, gr, bl] = viridis((value - low) / (high - low || 1));
    const at = 4 * ((bands - 1 - b) * mel.length + t);
    image.data.set([r, gr, bl, 255], at);
  }));
  const tile = document.createElement("canvas");
  tile.width = image.width; tile.height = image.height;
  tile.getContext("2d").putImageData(image, 0, 0);
  if (logMel) {
    const melLeft = cellLeft(logMel.hop_seconds, logMel.window_seconds);
    g.imageSmoothingEnabled = false;
    g.drawImage(tile, x(melLeft), melTop,
      x(melLeft + mel.length * logMel.hop_seconds) - x(melLeft), melHeight);
    g.fillText("log-mel", 8, melTop + melHeight / 2);
  }

  // per-frame probabilities (each frame heard alone), the most probable class on top; darker
  // is more probable; a non-speech frame is drawn hatched, never as an answer
  const [probsTop] = rows.probs;
  const start = cellLeft(frames.hop_seconds, frames.window_seconds);
  const cell = (k) => [x(start + k * frames.hop_seconds), x(start + (k + 1) * frames.hop_seconds)];
  if (!perFrame) {
    g.fillText("no per-frame answer: a fused run answers whole clips only", left, probsTop + rowHeight / 2);
  }
  (perFrame ? ranked : []).forEach((name, row) => {
    const top = probsTop + row * rowHeight;
    perFrame[name].forEach((p, k) => {
      const [from, to] = cell(k);
      if (!result.frame_speech[k]) {
        g.fillStyle = "#eee";
        g.fillRect(from, top, to - from, rowHeight - 1);
        g.strokeStyle = "#bbb";
        g.beginPath(); g.moveTo(from, top + rowHeight - 1); g.lineTo(to, top); g.stroke();
        return;
      }
      const shade = Math.round(255 * (1 - p));
      g.fillStyle = `rgb(${shade},${shade},${shade})`;
      g.fillRect(from, top, to - from, rowHeight - 1);
    });
    g.fillStyle = "#222";
    g.fillText(name.length > 15 ? name.slice(0, 14) + "…" : name, 8, top + rowHeight / 2);
  });
  const marks = probsTop + probsHeight + 3;
  g.fillStyle = "#c22";
  result.frame_speech.forEach((speech, k) => {
    if (!speech) g.fillRect(cell(k)[0], marks, cell(k)[1] - cell(k)[0], 3);
  });
  g.fillText("non-speech", 8, marks + 2);
  // the colour scale of the probabilities
  for (let i = 0; i <= 50; i++) {
    const shade = Math.round(255 * (1 - i / 50));
    g.fillStyle = `rgb(${shade},${shade},${shade})`;
    g.fillRect(right - 110 + 2 * i, 2, 2, 8);
  }
  g.fillStyle = "#222";
  g.fillText("0", right - 118, 6);
  g.fillText("1", right - 6, 6);

  // seconds
  const axisTop = height - axis;
  g.fillStyle = "#222";
  g.strokeStyle = "#999";
  g.textBaseline = "top";
  const step = duration > 30 ? 5 : duration > 8 ? 1 : 0.5;
  for (let t = 0; t <= duration + 1e-9; t += step) {
    g.beginPath(); g.moveTo(x(t), axisTop); g.lineTo(x(t), axisTop + 4); g.stroke();
    g.fillText(`${+t.toFixed(1)} s`, x(t) - 8, axisTop + 6);
  }
}

// --- wiring ---

$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) ask(file, file.name);
  $("file").value = "";
});
$("record").addEventListener("click", () => (recorder ? stopRecording() : startRecording()));
$("token").addEventListener("change", loadModel);
loadModel();
