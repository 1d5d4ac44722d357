// The navigation's live counts (waiting approvals, open hold requests) come over a board socket: the server
// tells a page when to read them again (exchange/home/live.py). A page with a socket of its own already gets
// that; on any other page this opens a small one that listens to the counts alone. After a socket was
// interrupted, the counts are read again: a change made meanwhile was never told to the page.
(function () {
  "use strict";

  function readCounts() {
    if (window.htmx) window.htmx.ajax("GET", "/home/counts", { target: "#nav-counts", swap: "none" });
  }

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
