// The fund request form: a field that only some categories take (nights: hotel) shows for them alone, item by
// item (each item row has its own category). A hidden field is also disabled, so nothing typed there before the
// category changed is sent; the server refuses nights for a category without any, it never drops them silently.
// "Add an item" and "Remove" are submit buttons the server answers (with htmx, in place), so they work without
// this script too.
(function () {
  function syncRow(row) {
    var category = row.querySelector("select[data-item-category]");
    if (!category) return;
    row.querySelectorAll("[data-for-categories]").forEach(function (field) {
      var wanted = field.getAttribute("data-for-categories").split(" ");
      var shown = wanted.indexOf(category.value) !== -1;
      field.hidden = !shown;
      field.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !shown;
      });
    });
  }
  function sync(form) {
    form.querySelectorAll("[data-item-row]").forEach(syncRow);
  }
  function syncAll(root) {
    (root || document).querySelectorAll("form[data-fund-request]").forEach(sync);
  }
  // Enter in a field sends the request: the browser would press the form's first submit button, which is
  // "Open a new case".
  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Enter" || !field.matches || !field.matches("form[data-fund-request] input")) return;
    var send = field.form && field.form.querySelector("button.send");
    if (!send) return;
    event.preventDefault();
    send.click();
  });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target.matches || !target.matches("select[data-item-category]")) return;
    var row = target.closest("[data-item-row]");
    if (row) syncRow(row);
  });
  document.addEventListener("DOMContentLoaded", function () { syncAll(document); });
  document.addEventListener("htmx:load", function (event) { syncAll(event.target.parentNode || document); });
})();
