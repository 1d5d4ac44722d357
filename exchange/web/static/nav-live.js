// The navigation's live counts (waiting approvals, open hold requests) come over a board socket: the server
// replaces the page's #nav-stale marker when they may have moved (exchange/home/live.py), and this reads them
// again a moment later; a burst of changes ends in one read. A page with a socket of its own already gets the
// marker; on any other page this opens a small one that listens to the counts alone. After a socket was
// interrupted, the counts are read again: a change made meanwhile was never told to the page.
//
// Every read is sent from #nav-counts, which stays in the page: htmx looks up an answer's out-of-band targets from
// the element that sent the request, and drops them when that element has been replaced meanwhile.
(function () {
  "use strict";

  var DELAY_MS = 300;
  var timer = null;
  var parts = {}; // what the home lists behind the counts, to read again with them: {url: target selector}

  function readCounts() {
    timer = null;
    if (!window.htmx || !document.getElementById("nav-counts")) return;
    window.htmx.ajax("GET", "/home/counts", { source: "#nav-counts", target: "#nav-counts", swap: "none" });
    Object.keys(parts).forEach(function (url) {
      var target = document.querySelector(parts[url]);
      if (target) window.htmx.ajax("GET", url, { source: target, target: target, swap: "outerHTML" });
    });
    parts = {};
  }

  function readCountsSoon() {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(readCounts, DELAY_MS);
  }

  document.addEventListener("htmx:load", function (event) {
    var marker = event.detail.elt;
    if (!marker || marker.id !== "nav-stale") return;
    var url = marker.getAttribute("data-refresh");
    var target = marker.getAttribute("data-target");
    if (url && target) parts[url] = target;
    readCountsSoon();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("nav-counts") || document.querySelector("[ws-connect]") || !window.htmx) return;
    var socket = document.createElement("div");
    socket.hidden = true;
    socket.setAttribute("hx-ext", "ws");
    socket.setAttribute("ws-connect", "/board/ws?views=nav");
    document.body.appendChild(socket);
    window.htmx.process(socket);
  });

  var interrupted = false;
  document.addEventListener("htmx:wsClose", function () {
    interrupted = true;
  });
  document.addEventListener("htmx:wsOpen", function () {
    if (interrupted) {
      interrupted = false;
      readCounts();
    }
  });
})();
