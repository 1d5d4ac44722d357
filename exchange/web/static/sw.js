// The service worker of Web Push (exchange/oncall/push.py): it shows what the server pushed and opens the app
// where the request waits. A push carries only a few words and a path of this site, never a request's details.
"use strict";

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  const title = data.title || "Refuge Exchange";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: "refuge-waiting",
      renotify: true,
      data: { url: typeof data.url === "string" && data.url.startsWith("/") ? data.url : "/home" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL(event.notification.data.url, self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (client.url.startsWith(self.location.origin) && "focus" in client) {
          // navigate() works only on a page this worker controls: any other opens a new window instead.
          return client
            .navigate(target)
            .then((opened) => (opened || client).focus())
            .catch(() => self.clients.openWindow(target));
        }
      }
      return self.clients.openWindow(target);
    }),
  );
});
