// latentlapse site: the interactive map of the probe points, drawn on a canvas from explore/.
// Data files are scripts that call window.latentlapseExplore(payload) (a page on file:// may not
// fetch), loaded only when needed: the frame shown, the next few while playing, all of them for
// a pinned point's trail. Everything from the trial is put into the page as text, never as HTML.
// app.js owns the timeline and the URL hash; this file exposes window.latentlapseMap for it.
// One map may have several panels (latentlapse compare: one run each) that share the timeline,
// the zoom, the hovered and pinned point and the class highlight; each panel has its own frames.
(function () {
  "use strict";
  var BOX = 1.06;             // the PNG frames' fixed axes: coordinates fitted to [-1, 1] plus a margin
  var SPRITE_ZOOM = 3;        // probe and reconstruction pictures at 3x
  var HOVER_PX = 14;          // how near the pointer must be to a point (touch: twice that)
  var IN_FLIGHT = 6;          // data scripts loading at once
  var MAX_ZOOM = 40;
  var DETAIL_DELAY_MS = 250;  // the pinned card follows the playhead after it rests this long
  var SVG = "http://www.w3.org/2000/svg";

  function byId(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function bytes(b64) {
    var s = window.atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return new DataView(out.buffer);
  }

  // ---- data: payloads arrive through the registered function, in any order
  var probes = null;
  var panels = [];            // see Panel below; the report's page has one
  var requested = {};
  var queue = [];             // [panel index, path] to load
  var loading = 0;
  var listeners = [];

  function decodeFrame(p) {
    var n = p.n, xy = new Float32Array(2 * n), view = bytes(p.xy);
    for (var i = 0; i < 2 * n; i++) {
      var q = view.getInt16(2 * i, true);
      xy[i] = q === -32768 ? NaN : q / p.scale;
    }
    var loss = null, nn = null;
    if (p.loss) {
      var lv = bytes(p.loss);
      loss = new Float32Array(n);
      for (var j = 0; j < n; j++) loss[j] = lv.getFloat32(4 * j, true);
    }
    if (p.nn && p.k) {
      var nv = bytes(p.nn), size = p.nn_bytes || 2, none = size === 2 ? 0xffff : 0xffffffff;
      nn = new Int32Array(n * p.k);
      for (var m = 0; m < n * p.k; m++) {
        var v = size === 2 ? nv.getUint16(2 * m, true) : nv.getUint32(4 * m, true);
        nn[m] = v === none ? -1 : v;
      }
    }
    // label: the frame's training step as people say it ("step 925 of 937"); step is smdebug's EVAL step.
    return { index: p.index, step: p.step, label: p.label || null, n: n, xy: xy, loss: loss, nn: nn, k: p.k || 0, recon: p.recon };
  }

  // A frame's script says which panel asked for it by its data-panel attribute (a comparison
  // may load one file for two panels: a run compared with itself).
  window.latentlapseExplore = function (payload) {
    if (!payload || typeof payload !== "object") return;
    var script = document.currentScript;
    var panel = panels[script ? parseInt(script.getAttribute("data-panel"), 10) || 0 : 0];
    if (payload.kind === "probes") {
      probes = payload;
      probes.classOf = new Int32Array(payload.labels);
    } else if (payload.kind === "frame" && typeof payload.index === "number" && panel) {
      panel.frames[payload.index] = decodeFrame(payload);
    }
    for (var i = 0; i < listeners.length; i++) listeners[i](payload);
  };

  function pump() {
    while (loading < IN_FLIGHT && queue.length) {
      var job = queue.shift();
      loading++;
      var s = document.createElement("script");
      s.setAttribute("data-panel", String(job[0]));
      s.src = job[1];
      s.onload = function () { loading--; this.remove(); pump(); };
      s.onerror = function () {  // a file gone missing: that frame is left out, playback goes on
        loading--;
        this.remove();
        var p = panels[parseInt(this.getAttribute("data-panel"), 10) || 0];
        var i = p ? p.sources.indexOf(this.getAttribute("src")) : -1;
        if (i >= 0) p.sources[i] = null;
        pump();
        requestDraw();
      };
      document.body.appendChild(s);
    }
  }
  function request(panelIndex, src, first) {
    var key = panelIndex + " " + src;
    if (!src || requested[key]) return;
    requested[key] = true;
    if (first) queue.unshift([panelIndex, src]); else queue.push([panelIndex, src]);
    pump();
  }
  // Frame `index` of a panel (its own numbering, not the timeline's).
  function need(panel, index, first) {
    if (index >= 0 && index < panel.sources.length && !panel.frames[index]) request(panel.id, panel.sources[index], first);
  }
  // The frame a panel shows at timeline position t (a whole tick): its own index.
  function frameAt(panel, t) {
    var n = panel.frameAt ? panel.frameAt.length : panel.sources.length;
    t = Math.max(0, Math.min(n - 1, t));
    return panel.frameAt ? panel.frameAt[t] : t;
  }
  function ticks() { return panels.length ? (panels[0].frameAt ? panels[0].frameAt.length : panels[0].sources.length) : 0; }

  // ---- the view
  var wrap, legendBox, onChange;
  var colours = [];
  var pos = 0;                // the timeline's position: tick (frame index of a report) plus a fraction
  var zoom = 1, cx = 0, cy = 0;
  var hovered = -1, pinned = -1;
  var highlight = {};         // class index -> true; empty: every class shown
  var palette = { bg: "#fff", fg: "#000", line: "#ccc", muted: "#666" };
  var drawQueued = false;

  // One canvas and its overlays, and the frames of one run.
  function Panel(id, root, sources, frameAtTicks, name) {
    this.id = id;
    this.name = name || "";
    this.root = root;
    this.canvas = root.querySelector("canvas.map");
    this.ctx = this.canvas.getContext("2d");
    this.overlay = root.querySelector("svg.map-overlay");
    this.markers = root.querySelector(".map-markers");
    this.tooltip = root.querySelector(".tooltip");
    this.sources = sources || [];
    this.frameAt = frameAtTicks || null;  // per tick: the frame shown (null: tick = frame)
    this.frames = [];                     // per frame index: decoded payload, or undefined
    this.positions = null;                // the coordinates drawn last (world units), for picking points
    this.blend = null;                    // the buffer interpolated coordinates are written into
    this.size = { w: 0, h: 0, dpr: 1 };
    this.trailLayer = null;
    this.trailKey = "";
    this.neighbourMarkers = [];
  }

  function readPalette() {
    var cs = window.getComputedStyle(wrap);
    function v(name, fallback) { return (cs.getPropertyValue(name) || "").trim() || fallback; }
    palette = { bg: v("--card", "#fff"), fg: v("--fg", "#000"), line: v("--line", "#ccc"), muted: v("--muted", "#666"),
                warn: v("--warn", "#9a5b00") };
  }

  function fit(P) {
    var rect = P.canvas.getBoundingClientRect();
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(rect.width)), h = Math.max(1, Math.round(rect.height));
    if (w !== P.size.w || h !== P.size.h || dpr !== P.size.dpr) {
      P.size = { w: w, h: h, dpr: dpr };
      P.canvas.width = Math.round(w * dpr);
      P.canvas.height = Math.round(h * dpr);
      P.overlay.setAttribute("viewBox", "0 0 " + w + " " + h);
    }
  }

  // World (fitted coordinates, y up) to CSS pixels of a panel's canvas, and back.
  function scale(P) { return Math.min(P.size.w, P.size.h) / (2 * BOX) * zoom; }
  function toScreenX(P, x) { return (x - cx) * scale(P) + P.size.w / 2; }
  function toScreenY(P, y) { return P.size.h / 2 - (y - cy) * scale(P); }
  function toWorld(P, sx, sy) { return [(sx - P.size.w / 2) / scale(P) + cx, (P.size.h / 2 - sy) / scale(P) + cy]; }

  // The coordinates at position p: between two loaded frames, each point moves on a straight line.
  function interpolate(P, p) {
    var a = Math.floor(p), t = p - a, fa = P.frames[frameAt(P, a)], fb = P.frames[frameAt(P, a + 1)];
    if (!fa) return null;
    if (!fb || fb === fa || t < 1e-6) return fa.xy;
    if (!P.blend || P.blend.length !== fa.xy.length) P.blend = new Float32Array(fa.xy.length);
    var blend = P.blend;
    for (var i = 0; i < fa.xy.length; i++) {
      var u = fa.xy[i], v = fb.xy[i];
      blend[i] = u !== u ? v : v !== v ? u : u + (v - u) * t;  // x !== x: NaN, not drawn there
    }
    return blend;
  }
  // The frame whose numbers (loss, neighbours, reconstructions) a panel shows at the playhead.
  function shownFrame(P) { return P.frames[frameAt(P, Math.round(pos))] || P.frames[frameAt(P, Math.floor(pos))]; }

  function pointRadius(P) { return Math.min(6, (P.size.w < 420 ? 1.8 : 2.3) * Math.sqrt(zoom)); }

  function draw() {
    drawQueued = false;
    if (!probes) return;
    for (var i = 0; i < panels.length; i++) drawPanel(panels[i]);
  }

  function drawPanel(P) {
    var ctx = P.ctx;
    fit(P);
    var xy = interpolate(P, pos), size = P.size;
    var dpr = size.dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = palette.bg;
    ctx.fillRect(0, 0, size.w, size.h);
    ctx.strokeStyle = palette.line;
    ctx.lineWidth = 1;
    ctx.strokeRect(toScreenX(P, -BOX), toScreenY(P, BOX), 2 * BOX * scale(P), 2 * BOX * scale(P));
    if (!xy) { drawOverlay(P, null); return; }
    P.positions = xy;
    var r = pointRadius(P), d = 2 * r, k = scale(P), ox = size.w / 2 - cx * k, oy = size.h / 2 + cy * k;
    var any = false;
    for (var key in highlight) { any = true; break; }
    var order = probes.byClass;
    // Faded classes first, so the highlighted ones are drawn on top.
    for (var pass = 0; pass < 2; pass++) {
      for (var c = 0; c < order.length; c++) {
        var lit = !any || highlight[c];
        if ((pass === 0) === !!lit) continue;
        var members = order[c];
        ctx.globalAlpha = lit ? 0.9 : 0.12;
        ctx.fillStyle = colours[c % colours.length] || palette.fg;
        ctx.beginPath();
        for (var m = 0; m < members.length; m++) {
          var i = members[m], x = xy[2 * i], y = xy[2 * i + 1];
          if (x !== x || y !== y) continue;
          ctx.rect(ox + x * k - r, oy - y * k - r, d, d);
        }
        ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
    drawLinks(P, xy);
    drawOverlay(P, xy);
  }

  function requestDraw() {
    if (!drawQueued) { drawQueued = true; window.requestAnimationFrame(draw); }
  }

  // ---- the pinned point: its trail over every frame and its nearest latent neighbours (SVG)
  // The trail does not move with the playhead: it is rebuilt only when the pin, the view or the
  // loaded frames change. What moves: markers (divs moved by transforms) and the links (canvas).
  function drawOverlay(P, xy) {
    if (!P.trailLayer) {
      P.trailLayer = svg("g", {});
      P.overlay.appendChild(P.trailLayer);
      P.pinMarker = marker(P, "pinned-marker");
      P.hoverMarker = marker(P, "hover-marker");
    }
    var loaded = 0, listed = 0;
    for (var f = 0; f < P.sources.length; f++) { if (P.frames[f]) loaded++; if (P.sources[f]) listed++; }
    var key = pinned < 0 ? "" : [pinned, zoom, cx, cy, P.size.w, P.size.h, loaded, listed].join(" ");
    if (key !== P.trailKey) {
      P.trailKey = key;
      var trailLayer = P.trailLayer;
      while (trailLayer.firstChild) trailLayer.removeChild(trailLayer.firstChild);
      var trail = pinned >= 0 ? trailPoints(P) : null;
      if (trail) {
        var g = svg("g", P.id === 0 ? { "class": "trail", id: "trail" } : { "class": "trail" });
        g.appendChild(svg("polyline", { points: trail.join(" ") }));
        for (var t = 0; t < trail.length; t++) {
          var p = trail[t].split(",");
          g.appendChild(svg("circle", { "class": "trail-vertex", cx: p[0], cy: p[1], r: 1.8 }));
        }
        trailLayer.appendChild(g);
      }
    }
    // Markers are a few fixed elements moved by CSS transforms: moving them repaints nothing.
    var shown = 0;
    if (pinned >= 0 && xy) {
      var frame = shownFrame(P);
      if (frame && frame.nn) {
        for (var j = 0; j < frame.k; j++) {
          var nb = frame.nn[pinned * frame.k + j];
          if (nb < 0 || xy[2 * nb] !== xy[2 * nb]) continue;
          place(neighbourMarker(P, shown), toScreenX(P, xy[2 * nb]), toScreenY(P, xy[2 * nb + 1]));
          neighbourMarker(P, shown).setAttribute("data-index", String(nb));
          shown++;
        }
      }
    }
    for (var h = shown; h < P.neighbourMarkers.length; h++) P.neighbourMarkers[h].hidden = true;
    var pinOk = pinned >= 0 && xy && xy[2 * pinned] === xy[2 * pinned];
    if (pinOk) place(P.pinMarker, toScreenX(P, xy[2 * pinned]), toScreenY(P, xy[2 * pinned + 1])); else P.pinMarker.hidden = true;
    var hoverOk = hovered >= 0 && xy && xy[2 * hovered] === xy[2 * hovered];
    if (hoverOk) place(P.hoverMarker, toScreenX(P, xy[2 * hovered]), toScreenY(P, xy[2 * hovered + 1])); else P.hoverMarker.hidden = true;
  }

  function marker(P, cls) {
    var m = el("div", "marker " + cls);
    m.hidden = true;
    P.markers.appendChild(m);
    return m;
  }
  function neighbourMarker(P, i) {
    while (P.neighbourMarkers.length <= i) P.neighbourMarkers.push(marker(P, "neighbour"));
    return P.neighbourMarkers[i];
  }
  function place(m, x, y) {
    m.hidden = false;
    m.style.transform = "translate(" + x.toFixed(1) + "px," + y.toFixed(1) + "px)";
  }

  // Lines from the pinned point to its neighbours, on the canvas (they move with every frame).
  function drawLinks(P, xy) {
    if (pinned < 0 || !xy || xy[2 * pinned] !== xy[2 * pinned]) return;
    var frame = shownFrame(P), ctx = P.ctx;
    if (!frame || !frame.nn) return;
    ctx.save();
    ctx.strokeStyle = palette.warn;
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    for (var j = 0; j < frame.k; j++) {
      var nb = frame.nn[pinned * frame.k + j];
      if (nb < 0 || xy[2 * nb] !== xy[2 * nb]) continue;
      ctx.moveTo(toScreenX(P, xy[2 * pinned]), toScreenY(P, xy[2 * pinned + 1]));
      ctx.lineTo(toScreenX(P, xy[2 * nb]), toScreenY(P, xy[2 * nb + 1]));
    }
    ctx.stroke();
    ctx.restore();
  }

  // One vertex per frame once every frame's coordinates are here (they are requested on pin).
  function trailPoints(P) {
    var pts = [];
    for (var f = 0; f < P.sources.length; f++) {
      if (!P.sources[f]) continue;
      var fr = P.frames[f];
      if (!fr) return null;
      var x = fr.xy[2 * pinned], y = fr.xy[2 * pinned + 1];
      if (x !== x) continue;
      pts.push(toScreenX(P, x).toFixed(1) + "," + toScreenY(P, y).toFixed(1));
    }
    return pts;
  }

  // ---- what a point is: picture, reconstruction, class, loss, index
  function spriteInto(box, src, index) {
    var s = probes.sprite;
    if (!box) return;
    if (!s || !src) { box.hidden = true; return; }
    box.hidden = false;
    if (s.index) index = s.index[index];  // a comparison's points are a subset of the sheet's
    var col = index % s.cols, row = Math.floor(index / s.cols);
    box.style.width = s.width * SPRITE_ZOOM + "px";
    box.style.height = s.height * SPRITE_ZOOM + "px";
    box.style.backgroundImage = "url(\"" + src + "\")";
    box.style.backgroundSize = s.cols * s.width * SPRITE_ZOOM + "px auto";
    box.style.backgroundPosition = (-col * s.width * SPRITE_ZOOM) + "px " + (-row * s.height * SPRITE_ZOOM) + "px";
  }

  function lossText(frame, index) {
    var loss = frame && frame.loss ? frame.loss[index] : null;
    return loss === null ? "not saved" : (isFinite(loss) ? loss.toPrecision(4) : String(loss));
  }

  // The card of a point: the first panel's frame gives the reconstruction, the loss and the frame
  // line; a card with a .point-losses list (a comparison's) also gets every panel's loss.
  function describe(box, index) {
    var P = panels[0], frame = shownFrame(P);
    var cls = probes.classOf[index];
    spriteInto(box.querySelector(".probe-image"), probes.sprite && probes.sprite.src, index);
    spriteInto(box.querySelector(".recon-image"), frame && frame.recon, index);
    box.querySelector(".point-class").textContent = probes.classes[cls] !== undefined ? probes.classes[cls] : String(cls);
    box.querySelector(".point-swatch").style.background = colours[cls % colours.length] || palette.fg;
    box.querySelector(".point-index").textContent = String(index);
    var one = box.querySelector(".point-loss");
    if (one) one.textContent = lossText(frame, index);
    var where = box.querySelector(".point-frame");
    if (where) where.textContent = String(frameAt(P, Math.round(pos)) + 1) + (frame && frame.label ? ", " + frame.label : "");
    var list = box.querySelector(".point-losses");
    if (list) {
      while (list.firstChild) list.removeChild(list.firstChild);
      for (var i = 0; i < panels.length; i++) {
        var li = el("li");
        li.appendChild(el("span", "run-name", panels[i].name));
        li.appendChild(document.createTextNode(": loss " + lossText(shownFrame(panels[i]), index)));
        list.appendChild(li);
      }
    }
  }

  // The tooltip shows in the panel the pointer is over; the others mark the point.
  function showTooltip(P, index, sx, sy) {
    for (var i = 0; i < panels.length; i++) if (panels[i] !== P && panels[i].tooltip) panels[i].tooltip.hidden = true;
    var tooltip = P.tooltip;
    if (!tooltip) return;
    if (index < 0) { tooltip.hidden = true; return; }
    describe(tooltip, index);
    tooltip.hidden = false;
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    var left = sx + 16 + w > P.size.w ? Math.max(0, sx - 16 - w) : sx + 16;
    var top = Math.min(Math.max(0, sy - h / 2), Math.max(0, P.size.h - h));
    tooltip.style.left = left + "px";
    tooltip.style.top = top + "px";
  }

  function showPinned() {
    var panel = byId("pin-detail");
    var input = byId("pin-input");
    byId("unpin").hidden = pinned < 0;
    if (pinned < 0) { panel.hidden = true; if (document.activeElement !== input) input.value = ""; return; }
    panel.hidden = false;
    if (document.activeElement !== input) input.value = String(pinned);
    describe(panel, pinned);
    var list = byId("neighbours");
    while (list.firstChild) list.removeChild(list.firstChild);
    var frame = panels[0].frames[frameAt(panels[0], Math.round(pos))];
    if (!frame || !frame.nn) { list.appendChild(el("li", "muted", "not saved for this frame")); return; }
    for (var j = 0; j < frame.k; j++) {
      var nb = frame.nn[pinned * frame.k + j];
      if (nb < 0) continue;
      var li = el("li"), b = el("button", "neighbour-button");
      b.type = "button";
      b.setAttribute("data-index", String(nb));
      var cls = probes.classOf[nb];
      var sw = el("span", "point-swatch");
      sw.style.background = colours[cls % colours.length] || palette.fg;
      b.appendChild(sw);
      b.appendChild(document.createTextNode("#" + nb + " " + (probes.classes[cls] !== undefined ? probes.classes[cls] : cls)));
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  // While playing, the pinned point's card (and its reconstruction sprite, a whole frame's sheet)
  // is redrawn once the playhead rests, not at every frame it passes.
  var detailTimer = null;
  function detailSoon() {
    if (detailTimer !== null) window.clearTimeout(detailTimer);
    detailTimer = window.setTimeout(function () { detailTimer = null; showPinned(); }, DETAIL_DELAY_MS);
  }

  function pin(index) {
    pinned = index >= 0 && probes && index < probes.n ? index : -1;
    if (pinned >= 0) panels.forEach(function (P) { for (var f = 0; f < P.sources.length; f++) need(P, f); });
    showPinned();
    requestDraw();
    if (onChange) onChange();
  }

  function nearest(P, sx, sy, radius) {
    var positions = P.positions;
    if (!positions || !probes) return -1;
    var best = -1, bestD = radius * radius, k = scale(P), ox = P.size.w / 2 - cx * k, oy = P.size.h / 2 + cy * k;
    var any = false;
    for (var key in highlight) { any = true; break; }
    for (var i = 0; i < probes.n; i++) {
      var x = positions[2 * i], y = positions[2 * i + 1];
      if (x !== x) continue;
      if (any && !highlight[probes.classOf[i]]) continue;  // faded points are not picked
      var dx = ox + x * k - sx, dy = oy - y * k - sy, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }

  // ---- legend: one button per class; several may be lit at once
  function buildLegend() {
    while (legendBox.firstChild) legendBox.removeChild(legendBox.firstChild);
    for (var c = 0; c < probes.classes.length; c++) {
      var li = el("li"), b = el("button", "class-button");
      b.type = "button";
      b.setAttribute("data-class", String(c));
      b.setAttribute("aria-pressed", highlight[c] ? "true" : "false");
      var sw = el("span", "point-swatch");
      sw.style.background = colours[c % colours.length] || palette.fg;
      b.appendChild(sw);
      b.appendChild(document.createTextNode(probes.classes[c]));
      li.appendChild(b);
      legendBox.appendChild(li);
    }
  }
  function syncLegend() {
    var buttons = legendBox.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) {
      var c = parseInt(buttons[i].getAttribute("data-class"), 10);
      buttons[i].setAttribute("aria-pressed", highlight[c] ? "true" : "false");
    }
    var none = true;
    for (var k in highlight) { none = false; break; }
    byId("classes-clear").hidden = none;
    wrap.setAttribute("data-highlight", Object.keys(highlight).join(","));
  }
  function toggleClass(c) {
    if (highlight[c]) delete highlight[c]; else highlight[c] = true;
    syncLegend();
    requestDraw();
    if (onChange) onChange();
  }

  // ---- zoom and pan (the axes stay the PNG frames' box; only the view moves)
  function zoomAt(P, factor, sx, sy) {
    var before = toWorld(P, sx, sy);
    zoom = Math.min(MAX_ZOOM, Math.max(1, zoom * factor));
    if (zoom === 1) { cx = 0; cy = 0; } else {
      var after = toWorld(P, sx, sy);
      cx += before[0] - after[0];
      cy += before[1] - after[1];
    }
    viewChanged();
  }
  function panBy(P, dx, dy) {
    if (zoom === 1) return;
    cx -= dx / scale(P);
    cy += dy / scale(P);
    viewChanged();
  }
  function resetView() { zoom = 1; cx = 0; cy = 0; viewChanged(); }
  function viewChanged() {
    wrap.setAttribute("data-zoom", zoom.toFixed(3));
    if (onChange) onChange();
    byId("zoom-reset").disabled = zoom === 1;
    // Touch drags scroll the page until the map is zoomed in; then they pan it.
    for (var i = 0; i < panels.length; i++) panels[i].canvas.style.touchAction = zoom === 1 ? "pan-x pan-y" : "none";
    requestDraw();
  }

  // The pointer and keys on one panel's canvas.
  function wirePanel(P) {
    var canvas = P.canvas, drag = null, moved = false;
    canvas.addEventListener("pointerdown", function (e) {
      drag = { x: e.clientX, y: e.clientY, id: e.pointerId, type: e.pointerType };
      moved = false;
    });
    canvas.addEventListener("pointermove", function (e) {
      var rect = canvas.getBoundingClientRect(), sx = e.clientX - rect.left, sy = e.clientY - rect.top;
      if (drag && drag.id === e.pointerId && (e.buttons & 1 || e.pointerType === "touch")) {
        var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (moved || dx * dx + dy * dy > 16) {
          if (!moved && zoom > 1 && canvas.setPointerCapture) canvas.setPointerCapture(e.pointerId);
          moved = true;
          panBy(P, dx, dy);
          drag.x = e.clientX; drag.y = e.clientY;
          return;
        }
      }
      if (e.pointerType === "touch") return;
      var i = nearest(P, sx, sy, HOVER_PX);
      if (i !== hovered) { hovered = i; requestDraw(); }
      showTooltip(P, i, sx, sy);
      canvas.style.cursor = i >= 0 ? "pointer" : zoom > 1 ? "grab" : "default";
    });
    canvas.addEventListener("pointerup", function (e) {
      var wasDrag = moved;
      drag = null; moved = false;
      if (wasDrag) return;
      var rect = canvas.getBoundingClientRect(), sx = e.clientX - rect.left, sy = e.clientY - rect.top;
      var i = nearest(P, sx, sy, e.pointerType === "touch" ? 2 * HOVER_PX : HOVER_PX);
      if (e.pointerType === "touch") {  // a tap shows the point and pins it
        hovered = -1;
        if (P.tooltip) P.tooltip.hidden = true;
        pin(i);
        return;
      }
      pin(i === pinned ? -1 : i);
    });
    canvas.addEventListener("pointerleave", function () {
      hovered = -1;
      if (P.tooltip) P.tooltip.hidden = true;
      requestDraw();
    });
    canvas.addEventListener("wheel", function (e) {
      var rect = canvas.getBoundingClientRect();
      e.preventDefault();
      zoomAt(P, Math.exp(-e.deltaY * 0.002), e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    canvas.addEventListener("keydown", function (e) {
      var step = 40, handled = true, w = P.size.w / 2, h = P.size.h / 2;
      if (e.key === "+" || e.key === "=") zoomAt(P, 1.5, w, h);
      else if (e.key === "-" || e.key === "_") zoomAt(P, 1 / 1.5, w, h);
      else if (e.key === "0") resetView();
      else if (e.shiftKey && e.key === "ArrowLeft") panBy(P, step, 0);
      else if (e.shiftKey && e.key === "ArrowRight") panBy(P, -step, 0);
      else if (e.shiftKey && e.key === "ArrowUp") panBy(P, 0, step);
      else if (e.shiftKey && e.key === "ArrowDown") panBy(P, 0, -step);
      else if (e.key === "Escape") pin(-1);
      else handled = false;
      if (handled) { e.preventDefault(); e.stopPropagation(); }
    });
  }

  // The controls every panel shares: zoom buttons, classes, the pinned point's form.
  function wire() {
    panels.forEach(wirePanel);
    var P = panels[0];
    byId("zoom-in").addEventListener("click", function () { zoomAt(P, 1.5, P.size.w / 2, P.size.h / 2); });
    byId("zoom-out").addEventListener("click", function () { zoomAt(P, 1 / 1.5, P.size.w / 2, P.size.h / 2); });
    byId("zoom-reset").addEventListener("click", resetView);
    legendBox.addEventListener("click", function (e) {
      var b = e.target.closest ? e.target.closest("button[data-class]") : null;
      if (b) toggleClass(parseInt(b.getAttribute("data-class"), 10));
    });
    byId("classes-clear").addEventListener("click", function () { highlight = {}; syncLegend(); requestDraw(); if (onChange) onChange(); });
    byId("neighbours").addEventListener("click", function (e) {
      var b = e.target.closest ? e.target.closest("button[data-index]") : null;
      if (b) pin(parseInt(b.getAttribute("data-index"), 10));
    });
    byId("pin-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var v = parseInt(byId("pin-input").value, 10);
      pin(isFinite(v) ? v : -1);
    });
    byId("unpin").addEventListener("click", function () { pin(-1); });
    window.addEventListener("resize", requestDraw);
    if (window.matchMedia) {
      var mq = window.matchMedia("(prefers-color-scheme: dark)");
      var onScheme = function () { readPalette(); requestDraw(); };
      if (mq.addEventListener) mq.addEventListener("change", onScheme);
    }
  }

  function onData(payload) {
    if (payload.kind === "probes") {
      var by = [];
      for (var c = 0; c < probes.classes.length; c++) by.push([]);
      for (var i = 0; i < probes.n; i++) {
        var k = probes.classOf[i];
        while (by.length <= k) { by.push([]); probes.classes.push(String(by.length - 1)); }
        by[k].push(i);
      }
      probes.byClass = by;
      buildLegend();
      syncLegend();
      byId("pin-input").max = String(probes.n - 1);
      byId("explore").hidden = false;
      if (pendingPin >= 0) { var p = pendingPin; pendingPin = -1; pin(p); }
    }
    if (pinned >= 0) showPinned();
    requestDraw();
  }

  var pendingPin = -1;

  // ---- what app.js calls
  window.latentlapseMap = {
    // options: {probes: path, frames: [path or null per frame], colours, pin, classes, view, onChange}
    // or, for several panels, panels: [{frames: [...], frameAt: [frame per tick], name}] instead of
    // frames, with one .map-wrap[data-panel=i] element per panel inside #explore.
    init: function (options) {
      wrap = byId("explore");
      var canvas = byId("map");
      if (!wrap || !canvas || !canvas.getContext || !options.probes) return false;
      var specs = options.panels || [{ frames: options.frames || [] }];
      var roots = wrap.querySelectorAll(".map-wrap");
      if (roots.length < specs.length) return false;
      panels = specs.map(function (spec, i) { return new Panel(i, roots[i], spec.frames, spec.frameAt, spec.name); });
      legendBox = byId("classes");
      colours = options.colours || [];
      onChange = options.onChange;
      (options.classes || []).forEach(function (c) { highlight[c] = true; });
      pendingPin = typeof options.pin === "number" ? options.pin : -1;
      var v = options.view || [];
      if (v.length === 3 && v[0] >= 1 && v[0] <= MAX_ZOOM && Math.abs(v[1]) <= BOX && Math.abs(v[2]) <= BOX) {
        zoom = v[0]; cx = v[1]; cy = v[2];  // a zoomed view survives the live page's reloads
      }
      readPalette();
      listeners.push(onData);
      wire();
      viewChanged();
      request(0, options.probes, true);
      return true;
    },
    // Show position p (frame index + fraction).
    setPosition: function (p) {
      var before = Math.round(pos);
      pos = p;
      var a = Math.floor(p);
      panels.forEach(function (P) { need(P, frameAt(P, a), true); need(P, frameAt(P, a + 1), true); });
      if (pinned >= 0 && Math.round(p) !== before) detailSoon();
      requestDraw();
    },
    // Whether position p can be drawn now (the frames around it loaded in every panel); requests them if not.
    ready: function (p) {
      var a = Math.floor(p);
      return panels.every(function (P) {
        var fa = frameAt(P, a), fb = frameAt(P, a + 1);
        need(P, fa, true);
        need(P, fb, true);
        return (!!P.frames[fa] || !P.sources[fa]) && (!!P.frames[fb] || !P.sources[fb]);
      });
    },
    // Load ahead while playing, so the motion does not wait.
    prefetch: function (from, count) {
      var n = ticks();
      panels.forEach(function (P) { for (var i = 1; i <= count; i++) need(P, frameAt(P, (from + i) % n)); });
    },
    hashParams: function () {
      var out = {};
      if (pinned >= 0) out.pin = String(pinned);
      var cls = Object.keys(highlight);
      if (cls.length) out.classes = cls.sort(function (a, b) { return a - b; }).join(",");
      if (zoom > 1) out.view = [zoom.toFixed(3), cx.toFixed(4), cy.toFixed(4)].join(",");
      return out;
    },
    drawNow: function () { draw(); }
  };
})();
