// The runs index's one script: the compare command of the runs a person ticks (a static page cannot run it).
(function () {
  "use strict";
  var form = document.getElementById("pick");
  if (!form) return;
  var local = document.getElementById("compare-command");
  var compose = document.getElementById("compare-compose");
  var note = document.getElementById("pick-note");
  var most = parseInt(form.getAttribute("data-most"), 10) || 8;
  function quote(s) { return /^[A-Za-z0-9_.\/:=-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
  function update() {
    var boxes = form.querySelectorAll("input[type=checkbox]:checked"), paths = [], names = [];
    for (var i = 0; i < boxes.length; i++) { paths.push(quote(boxes[i].value)); names.push(quote(boxes[i].getAttribute("data-name"))); }
    local.value = "latentlapse compare " + paths.join(" ");
    if (compose) compose.value = "docker compose run --rm --no-deps --entrypoint latentlapse-compose reporter compare " + names.join(" ");
    note.textContent = boxes.length < 2 ? "Tick at least two runs." : boxes.length > most ? "At most " + most + " runs at once." : "";
  }
  form.addEventListener("change", update);
  update();
})();
