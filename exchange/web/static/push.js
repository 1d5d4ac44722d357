// "Turn on notifications" (templates/oncall/push_panel.html): register the service worker (/sw.js, scope /),
// subscribe with the server's VAPID public key, and send the subscription to the server (CSRF header, as htmx).
"use strict";

(() => {
  function keyBytes(base64url) {
    const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (error) {
      return "";
    }
  }

  function say(button, key) {
    const status = document.getElementById("push-status");
    if (status) status.textContent = button.dataset[key] || "";
  }

  async function turnOn(button) {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      say(button, "unsupported");
      return;
    }
    button.disabled = true;
    say(button, "working");
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        say(button, "denied");
        return;
      }
      const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
      await navigator.serviceWorker.ready;
      const subscription =
        (await registration.pushManager.getSubscription()) ||
        (await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: keyBytes(button.dataset.key),
        }));
      const answer = await fetch(button.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "x-csrftoken": csrfToken() },
        body: JSON.stringify(subscription.toJSON()),
      });
      if (!answer.ok) throw new Error("refused: " + answer.status);
      say(button, "done");
      // The list of browsers now shows this one; the sentence is said again in the new panel.
      if (window.htmx) await window.htmx.ajax("GET", "/notifications/panel", { target: "#push-panel" });
      say(button, "done");
    } catch (error) {
      say(button, "failed");
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-push-on]");
    if (button) turnOn(button);
  });
})();
