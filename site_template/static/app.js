// latentlapse site: frame scrubber, chart cursor, live refresh, copy buttons.
// Reads its data from the inline JSON block (no fetch, so the page works from file://).
// The scrubber position lives in the URL hash (#frame=7, #frame=latest, &play=1) so a reload
// keeps it; "latest" follows new frames as they arrive.
(function () {
  "use strict";
  var dataNode = document.getElementById("site-data");
  var data = dataNode ? JSON.parse(dataNode.textContent) : { frames: [], live: false };
  var frames = data.frames || [];
  var PLAY_MS = 500;

  function byId(id) { return document.getElementById(id); }
  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  // ---- where we are: parsed from and written to the hash
  function readHash() {
    var state = { index: frames.length - 1, play: false };
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var f = params.get("frame");
    if (f && f !== "latest") {
      var n = parseInt(f, 10);
      if (n >= 1 && n <= frames.length) state.index = n - 1;
    }
    state.play = params.get("play") === "1";
    return state;
  }

  function writeHash(index, play) {
    var value = index === frames.length - 1 && !play ? "latest" : String(index + 1);
    var hash = "#frame=" + value + (play ? "&play=1" : "");
    if (window.location.hash === hash) return;
    try {
      window.history.replaceState(null, "", hash);
    } catch (e) {
      window.location.replace(hash);
    }
  }

  // ---- scrubber
  var img = byId("frame-img");
  var slider = byId("frame-slider");
  var caption = byId("frame-caption");
  var playButton = byId("play");
  var current = 0;
  var timer = null;

  function show(index) {
    if (!frames.length) return;
    current = (index + frames.length) % frames.length;
    var f = frames[current];
    img.src = f.png;
    img.alt = f.alt;
    slider.value = String(current + 1);
    caption.textContent = "Frame " + f.number + " of " + frames.length + ", global step " +
      f.step.toLocaleString("en-US");
    var cursors = document.querySelectorAll(".chart-cursor");
    for (var i = 0; i < cursors.length; i++) {
      cursors[i].setAttribute("x1", f.cursor_x);
      cursors[i].setAttribute("x2", f.cursor_x);
    }
    writeHash(current, timer !== null);
    // Warm the cache for the next frame so playing does not flicker.
    var next = frames[(current + 1) % frames.length];
    if (next) { var pre = new Image(); pre.src = next.png; }
  }

  function setPlaying(on) {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
    if (on && frames.length > 1) {
      timer = window.setInterval(function () { show(current + 1); }, PLAY_MS);
    }
    playButton.textContent = timer !== null ? "Pause" : "Play";
    playButton.setAttribute("aria-pressed", timer !== null ? "true" : "false");
    writeHash(current, timer !== null);
  }

  function inFormField(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || (tag === "INPUT" && target.type !== "range") || tag === "SELECT";
  }

  if (img && slider && frames.length) {
    byId("controls").hidden = false;
    slider.addEventListener("input", function () {
      setPlaying(false);
      show(parseInt(slider.value, 10) - 1);
    });
    byId("prev").addEventListener("click", function () { setPlaying(false); show(current - 1); });
    byId("next").addEventListener("click", function () { setPlaying(false); show(current + 1); });
    playButton.addEventListener("click", function () { setPlaying(timer === null); });
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || inFormField(event.target)) return;
      if (event.target === slider && event.key.indexOf("Arrow") === 0) return; // the slider moves itself
      var handled = true;
      if (event.key === "ArrowLeft") { setPlaying(false); show(current - 1); }
      else if (event.key === "ArrowRight") { setPlaying(false); show(current + 1); }
      else if (event.key === "Home") { setPlaying(false); show(0); }
      else if (event.key === "End") { setPlaying(false); show(frames.length - 1); }
      else if (event.key === " " && (event.target === document.body || event.target === slider)) {
        setPlaying(timer === null);
      } else { handled = false; }
      if (handled) event.preventDefault();
    });
    var start = readHash();
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
