// The "Live" badge is put in place by the server once a page's socket is subscribed; when the socket
// drops (a restart, a lost network) the badge goes away until htmx reconnects and the server says so again.
document.addEventListener("htmx:wsClose", function () {
  var badge = document.getElementById("live-status");
  if (badge) {
    badge.className = "live";
    badge.textContent = "";
  }
});
