// The operation form says whose clock its times are read on: when the province changes, so does the zone
// named beside "Window start" and "Window end" (each option carries its zone's name in data-zone).
(function () {
  "use strict";
  function follow(select) {
    var option = select.options[select.selectedIndex];
    if (!option || !option.dataset.zone) return;
    var form = select.form;
    if (!form) return;
    form.querySelectorAll(".zone-name").forEach(function (span) {
      span.textContent = option.dataset.zone;
    });
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-zone-follows")) follow(target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-zone-follows]").forEach(follow);
  });
})();
