// latentlapse site: the timeline (PNG scrubber and interactive map), chart cursor, live refresh,
// copy buttons. Reads its data from the inline JSON block (no fetch, so the page works from
// file://). Where we are lives in the URL hash (#frame=7, #frame=latest, &play=1, &speed=4,
// &pin=17, &classes=2,5) so a reload keeps it; "latest" follows new frames as they arrive.
// A comparison's page (latentlapse compare) has no PNG scrubber: its timeline's entries are the
// comparison's steps, each with its own caption, and the map has one panel per run.
(function () {
  "use strict";
  var dataNode = document.getElementById("site-data");
  var data = dataNode ? JSON.parse(dataNode.textContent) : { frames: [], live: false };
  var frames = data.frames || [];
  var SPEEDS = [0.5, 1, 2, 4, 8, 16];  // frames per second
  var DEFAULT_SPEED = 2;
  var PREFETCH = 4;                    // frames loaded ahead of the playhead

  function byId(id) { return document.getElementById(id); }
  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  // ---- where we are: parsed from and written to the hash
  function readHash() {
    var state = { index: frames.length - 1, play: false, speed: DEFAULT_SPEED, pin: null, classes: [], view: null };
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var f = params.get("frame");
    if (f && f !== "latest") {
      var n = parseInt(f, 10);
      if (n >= 1 && n <= frames.length) state.index = n - 1;
    }
    state.play = params.get("play") === "1";
    var speed = parseFloat(params.get("speed"));
    if (SPEEDS.indexOf(speed) >= 0) state.speed = speed;
    var view = (params.get("view") || "").split(",").map(parseFloat);
    if (view.length === 3 && view.every(isFinite)) state.view = view;
    var pin = parseInt(params.get("pin"), 10);
    if (pin >= 0) state.pin = pin;
    (params.get("classes") || "").split(",").forEach(function (c) {
      var k = parseInt(c, 10);
      if (k >= 0 && state.classes.indexOf(k) < 0) state.classes.push(k);
    });
    return state;
  }

  var map = null;
  var current = 0;        // the frame shown in the PNG, the slider and the caption
  var position = 0;       // the map's position: frame index plus a fraction while playing
  var playing = false;
  var speed = DEFAULT_SPEED;

  function writeHash() {
    var value = current === frames.length - 1 && !playing ? "latest" : String(current + 1);
    var hash = "#frame=" + value + (playing ? "&play=1" : "");
    if (speed !== DEFAULT_SPEED) hash += "&speed=" + speed;
    var extra = map ? map.hashParams() : {};
    if (extra.pin !== undefined) hash += "&pin=" + extra.pin;
    if (extra.classes !== undefined) hash += "&classes=" + extra.classes;
    if (extra.view !== undefined) hash += "&view=" + extra.view;
    if (window.location.hash === hash) return;
    try {
      window.history.replaceState(null, "", hash);
    } catch (e) {
      window.location.replace(hash);
    }
  }

  // ---- the PNG scrubber follows the whole frame the map is at
  var img = byId("frame-img");
  var slider = byId("frame-slider");
  var caption = byId("frame-caption");
  var playButton = byId("play");
  var speedSelect = byId("speed");

  function showFrame(index) {
    current = index;
    var f = frames[current];
    if (img) { img.src = f.png; img.alt = f.alt; }
    slider.value = String(current + 1);
    caption.textContent = f.caption || ("Frame " + f.number + " of " + frames.length + ", " + f.label + (f.gap ? " · " + f.gap : ""));
    var cursors = document.querySelectorAll(".chart-cursor");
    for (var i = 0; i < cursors.length; i++) {
      cursors[i].setAttribute("x1", f.cursor_x);
      cursors[i].setAttribute("x2", f.cursor_x);
    }
    writeHash();
    // Warm the cache for the next frame so playing does not flicker.
    var next = frames[(current + 1) % frames.length];
    if (next && next.png) { var pre = new Image(); pre.src = next.png; }
  }

  function setPosition(p) {
    position = p;
    var whole = Math.floor(p + 1e-9);
    if (whole !== current || (img && img.getAttribute("src") !== frames[whole].png)) showFrame(whole);
    if (map) map.setPosition(p);
  }

  function show(index) {
    if (!frames.length) return;
    setPosition((index + frames.length) % frames.length);
  }

  // Playback moves the map smoothly: the position advances with time at `speed` frames per second,
  // waiting (not skipping) when the next frame's data is still loading.
  var last = null;
  function tick(now) {
    if (!playing) return;
    if (last !== null) {
      var next = position + Math.min(now - last, 250) / 1000 * speed;
      if (next >= frames.length - 1 + 1e-9 && position >= frames.length - 1) next = 0;  // wrap after the last frame
      else if (next > frames.length - 1) next = frames.length - 1;
      if (!map || map.ready(next)) setPosition(next); else next = position;
      if (map) map.prefetch(Math.floor(next), PREFETCH);
    }
    last = now;
    window.requestAnimationFrame(tick);
  }

  function setPlaying(on) {
    var was = playing;
    playing = on && frames.length > 1;
    if (!playing && position !== current) setPosition(current);  // stop on a whole frame
    if (playing && !was) { last = null; window.requestAnimationFrame(tick); }
    playButton.textContent = playing ? "Pause" : "Play";
    playButton.setAttribute("aria-pressed", playing ? "true" : "false");
    writeHash();
  }

  function inFormField(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || (tag === "INPUT" && target.type !== "range") || tag === "SELECT";
  }

  if ((img || data.panels) && slider && frames.length) {
    byId("controls").hidden = false;
    var start = readHash();
    speed = start.speed;
    if (speedSelect) {
      speedSelect.value = String(speed);
      speedSelect.addEventListener("change", function () {
        var v = parseFloat(speedSelect.value);
        if (SPEEDS.indexOf(v) >= 0) speed = v;
        writeHash();
      });
    }
    if (window.latentlapseMap && data.probes) {
      var ok = window.latentlapseMap.init({
        probes: data.probes,
        frames: frames.map(function (f) { return f.explore || null; }),
        panels: data.panels || null,
        colours: data.colours || [],
        pin: start.pin,
        classes: start.classes,
        view: start.view,
        onChange: writeHash
      });
      if (ok) map = window.latentlapseMap;
    }
    slider.addEventListener("input", function () {
      setPlaying(false);
      show(parseInt(slider.value, 10) - 1);
    });
    byId("prev").addEventListener("click", function () { setPlaying(false); show(current - 1); });
    byId("next").addEventListener("click", function () { setPlaying(false); show(current + 1); });
    playButton.addEventListener("click", function () { setPlaying(!playing); });
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || inFormField(event.target)) return;
      if (event.target === slider && event.key.indexOf("Arrow") === 0) return; // the slider moves itself
      var handled = true;
      if (event.key === "ArrowLeft") { setPlaying(false); show(current - 1); }
      else if (event.key === "ArrowRight") { setPlaying(false); show(current + 1); }
      else if (event.key === "Home") { setPlaying(false); show(0); }
      else if (event.key === "End") { setPlaying(false); show(frames.length - 1); }
      else if (event.key === " " && (event.target === document.body || event.target === slider ||
                                     event.target.id === "map")) {
        setPlaying(!playing);
      } else { handled = false; }
      if (handled) event.preventDefault();
    });
    show(start.index);
    setPlaying(start.play);
  }

  // ---- live refresh while the run may still grow
  var NO_REFRESH = "latentlapse-no-refresh";
  var box = byId("auto-refresh");
  var store = storage();
  if (box && store && store.getItem(NO_REFRESH) === "1") box.checked = false;
  if (box) {
    box.addEventListener("change", function () {
      if (store) store.setItem(NO_REFRESH, box.checked ? "0" : "1");
      if (box.checked) scheduleReload();
    });
  }
  // A live page whose reporter has said nothing for too long (it saves at least every 30 s, so it
  // was killed, or its machine stopped): say so, and stop reloading a page that will not change.
  var silentFor = data.live && data.updated ? Date.now() / 1000 - data.updated : 0;
  if (data.live && silentFor > (data.silentAfter || 180)) {
    data.live = false;
    var status = byId("status");
    if (status) {
      status.textContent = "No update for " + Math.round(silentFor / 60) + " min: the reporter may have " +
        "stopped. This page no longer refreshes; reload it by hand, or run the reporter again.";
      status.className = "status status-silent";
    }
    document.body.setAttribute("data-status", "silent");
  }
  var reloadTimer = null;
  function readerIsBusy() {
    // Don't pull the page away while someone selects or copies a snippet.
    var active = document.activeElement;
    var selection = window.getSelection ? String(window.getSelection()) : "";
    return selection.length > 0 || (active && active.tagName === "TEXTAREA");
  }
  function scheduleReload() {
    if (!data.live || reloadTimer !== null) return;
    reloadTimer = window.setTimeout(function () {
      reloadTimer = null;
      if (box && !box.checked) return;
      if (readerIsBusy()) { scheduleReload(); return; }
      window.location.reload();
    }, (data.refresh || 5) * 1000);
  }
  if (data.live && (!box || box.checked)) scheduleReload();

  // Open <details> stay open across reloads.
  var OPEN = "latentlapse-open-details";
  var details = document.querySelectorAll("details[id]");
  var opened = [];
  try { opened = JSON.parse((store && store.getItem(OPEN)) || "[]"); } catch (e) { opened = []; }
  for (var d = 0; d < details.length; d++) {
    if (opened.indexOf(details[d].id) >= 0) details[d].open = true;
    details[d].addEventListener("toggle", function () {
      var ids = [];
      for (var j = 0; j < details.length; j++) { if (details[j].open) ids.push(details[j].id); }
      if (store) store.setItem(OPEN, JSON.stringify(ids));
    });
  }

  // ---- copy buttons for the embed snippets
  var copyButtons = document.querySelectorAll("button.copy");
  for (var i = 0; i < copyButtons.length; i++) {
    (function (button) {
      var field = byId(button.getAttribute("data-copy"));
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        function done() { button.textContent = "Copied"; window.setTimeout(function () { button.textContent = "Copy"; }, 1500); }
        function fallback() {
          field.focus();
          field.select();
          try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: the reader copies by hand */ }
        }
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(field.value).then(done, fallback);
        } else {
          fallback();
        }
      });
    })(copyButtons[i]);
  }
})();
