// The fund request form: a field that only some categories take (nights: hotel) shows for them alone.
// A hidden field is also disabled, so nothing typed there before the category changed is sent; the server
// refuses nights for a category without any, it never drops them silently.
(function () {
  function sync(form) {
    var category = form.querySelector("select[name='category']");
    if (!category) return;
    form.querySelectorAll("[data-for-categories]").forEach(function (field) {
      var wanted = field.getAttribute("data-for-categories").split(" ");
      var shown = wanted.indexOf(category.value) !== -1;
      field.hidden = !shown;
      field.querySelectorAll("input, select, textarea").forEach(function (input) {
        input.disabled = !shown;
      });
    });
  }
  function syncAll(root) {
    (root || document).querySelectorAll("form[data-fund-request]").forEach(sync);
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-fund-request]");
    if (form && event.target.name === "category") sync(form);
  });
  document.addEventListener("DOMContentLoaded", function () { syncAll(document); });
  document.addEventListener("htmx:load", function (event) { syncAll(event.target.parentNode || document); });
})();
