// The digits page: draw on the canvas (mouse, pen or finger: Pointer Events), and the drawing is
// sent to /api/mnist as a PNG while drawing (at most one request in flight, the latest drawing
// wins) and when the stroke ends. A white page and black ink, as people write; the model's graph
// inverts and frames it as MNIST's digits are (pipelines/mnist/preprocessing.py).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("draw");
  const canvas = document.getElementById("canvas");
  if (!section || !canvas || !canvas.getContext) return;
  section.hidden = false;
  const ctx = canvas.getContext("2d");
  const digit = document.getElementById("live-digit");
  const meta = document.getElementById("live-meta");
  const error = document.getElementById("live-error");
  let drawing = false, dirty = false, inFlight = false, last = null, inked = false;

  function clear() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    inked = false;
    digit.textContent = "-";
    meta.textContent = "";
    for (let d = 0; d < 10; d++) {
      document.getElementById("bar-" + d).value = 0;
      document.getElementById("p-" + d).textContent = "-";
    }
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }

  function stroke(to) {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 20;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...(last || to));
    ctx.lineTo(...to);
    ctx.stroke();
    last = to;
    inked = dirty = true;
  }

  async function read() {
    if (inFlight || !dirty || !inked) return;
    inFlight = true;
    dirty = false;
    try {
      const response = await fetch("/api/mnist", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({image: canvas.toDataURL("image/png")}),
      });
      const body = await response.json();
      if (!body.success) throw new Error(body.error || response.statusText);
      error.hidden = true;
      digit.textContent = body.digit;
      meta.textContent = `(model ${body.model} version ${body.version}, ${body.latency_ms} ms)`;
      body.probabilities.forEach((p, d) => {
        document.getElementById("bar-" + d).value = p;
        document.getElementById("p-" + d).textContent = p.toFixed(3);
      });
      canvas.dataset.readings = String(Number(canvas.dataset.readings || 0) + 1);
    } catch (e) {
      error.textContent = "Could not read the drawing: " + e.message;
      error.hidden = false;
    } finally {
      inFlight = false;
      if (dirty && !drawing) read();  // the drawing changed while this request was out
    }
  }

  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    last = null;
    canvas.setPointerCapture(event.pointerId);
    stroke(point(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    stroke(point(event));
    read();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    last = null;
    read();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.style.touchAction = "none";  // a finger draws instead of scrolling the page
  document.getElementById("clear").addEventListener("click", clear);
  clear();
});
