// The board's pool rows (templates/fragments/pool_row.html).
(function () {
  "use strict";

  // After an Arrival or a Departure, the row offers Undo for a few seconds ([data-undo] = seconds), then takes it
  // away: an undo much later would reverse a count someone has since relied on.
  function hideUndoLater(root) {
    var forms = root.querySelectorAll ? root.querySelectorAll("[data-undo]") : [];
    if (root.matches && root.matches("[data-undo]")) {
      forms = [root];
    }
    Array.prototype.forEach.call(forms, function (form) {
      var seconds = parseInt(form.getAttribute("data-undo"), 10) || 10;
      window.setTimeout(function () {
        if (form.isConnected) {
          form.remove();
        }
      }, seconds * 1000);
    });
  }

  document.addEventListener("htmx:load", function (event) {
    hideUndoLater(event.target);
  });

  // The board socket also brings back this page's own change. A row already showing that version (with its Undo
  // and its word of what happened) is kept rather than replaced by the same counts without them, and an older
  // version arriving late never overwrites a newer one. While a tap in the row waits for its answer, the row is
  // left alone too (replacing it would leave the answer nowhere to go); a newer row that came meanwhile is put in
  // place after the answer if the answer is older. (app.js already holds back a socket message whose target has a
  // request in flight; this covers a tap still unanswered when app.js stops waiting.)
  var waiting = {};

  function versionOf(row) {
    return parseInt(row.getAttribute("data-version"), 10) || 0;
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    var fragment = event.detail.fragment;
    if (!target || !fragment || !target.matches || !target.matches("tr.pool[data-version]")) {
      return;
    }
    var incoming = fragment.querySelector ? fragment.querySelector("tr.pool[data-version]") : null;
    if (!incoming) {
      return;
    }
    if (target.querySelector(".htmx-request")) {
      waiting[target.id] = incoming.cloneNode(true);
      event.detail.shouldSwap = false;
    } else if (versionOf(target) >= versionOf(incoming)) {
      event.detail.shouldSwap = false;
    }
  });

  document.addEventListener("htmx:load", function (event) {
    var row = event.target;
    if (!row.matches || !row.matches("tr.pool[data-version]") || !waiting[row.id]) {
      return;
    }
    var newer = waiting[row.id];
    delete waiting[row.id];
    newer.removeAttribute("hx-swap-oob");
    if (versionOf(newer) > versionOf(row)) {
      row.replaceWith(newer);
      window.htmx.process(newer);
    }
  });
})();
