// The import job page: poll the job's progress and reload once it has finished
// (the finished page lists the errors by row). The page works without this file.
(function () {
  "use strict";
  var box = document.querySelector("[data-import-job]");
  if (!box || box.getAttribute("data-finished") === "true") { return; }
  var url = box.getAttribute("data-progress-url");
  var bar = box.querySelector("progress");
  var delay = 700;

  function show(job) {
    if (bar) { bar.value = job.progress; bar.textContent = Math.round(job.progress * 100) + "%"; }
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var value = job[el.getAttribute("data-field")];
      if (value !== undefined && value !== null) { el.textContent = String(value); }
    });
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (job) {
        show(job);
        if (job.finished) { window.location.reload(); return; }
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 10000);  // signed out or offline: back off, keep trying
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
