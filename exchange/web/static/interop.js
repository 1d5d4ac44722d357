// The directory import: while the package is sent and imported, a sign with the upload's progress
// (htmx:xhr:progress); it goes away with the answer, whatever it is.
(function () {
  function working(show) {
    var sign = document.getElementById("directory-working");
    if (sign) sign.hidden = !show;
  }
  function isImport(event) {
    return event.target && event.target.id === "directory-import";
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!isImport(event)) return;
    var bar = document.getElementById("directory-progress");
    if (bar) bar.removeAttribute("value");
    working(true);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (isImport(event)) working(false);
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = document.getElementById("directory-progress");
    if (!bar || !event.detail.lengthComputable) return;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  });
})();
