// What every page does in the browser: say when something failed (with a way to try again), show when live
// updates are interrupted and bring the page up to date when they return, send a form once, and ask before a
// step that cannot be undone. Everything works without this file; it only makes failures visible and taps safe.
// The words come from the page (base.html #ui-texts), translated by the server: this file has no gettext.
(function () {
  "use strict";

  function text(name) {
    var holder = document.getElementById("ui-texts");
    return (holder && holder.dataset[name]) || "";
  }

  // --- Messages: every failure is said, in #messages, with "Try again" -----------------------------------

  function showMessage(message, retry, kind) {
    var area = document.getElementById("messages");
    if (!area) return null;
    var box = document.createElement("div");
    box.className = "flash " + (kind || "error");
    box.setAttribute("role", kind === "ok" ? "status" : "alert");
    var p = document.createElement("p");
    p.textContent = message;
    box.appendChild(p);
    if (retry) {
      var again = document.createElement("button");
      again.type = "button";
      again.className = "retry";
      again.textContent = text("retry");
      again.addEventListener("click", function () {
        box.remove();
        retry();
      });
      box.appendChild(again);
    }
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link dismiss";
    dismiss.textContent = text("dismiss");
    dismiss.addEventListener("click", function () {
      box.remove();
    });
    box.appendChild(dismiss);
    area.replaceChildren(box);
    return box;
  }

  // The element a request came from, or the one that took its place: a live part read again after the network came
  // back replaces its forms (the same form: same tag, same address, same classes, in the same row).
  function stillThere(elt, config) {
    if (elt.isConnected) return elt;
    var attribute = ["hx-post", "hx-put", "hx-delete", "hx-patch", "hx-get"].filter(function (a) {
      return elt.hasAttribute(a);
    })[0];
    if (!attribute) return null;
    var selector = elt.tagName.toLowerCase() + "[" + attribute + '="' + CSS.escape(elt.getAttribute(attribute)) + '"]';
    var same = Array.prototype.filter.call(document.querySelectorAll(selector), function (candidate) {
      return candidate.className === elt.className;
    });
    return same.length === 1 ? same[0] : null;
  }

  // The request that failed, sent again from the same element (a form sends what is in it now).
  function retryOf(detail) {
    var elt = detail.elt;
    var config = detail.requestConfig || {};
    return function () {
      var source = elt ? stillThere(elt, config) : null;
      if (elt && elt.id === "live-refresh") {
        refreshLiveParts();
      } else if (source && window.htmx && config.verb && config.path) {
        window.htmx.ajax(config.verb.toUpperCase(), config.path, { source: source });
      } else {
        window.location.reload();
      }
    };
  }

  // The server's own sentence (exchange/web/errors.py renders templates/fragments/error.html for htmx).
  function serverSentence(xhr) {
    if (!xhr || !xhr.getResponseHeader("HX-Retarget")) return "";
    var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var node = doc.querySelector(".flash p, .error, p");
    return node ? node.textContent.trim() : "";
  }

  function failureText(xhr) {
    var status = xhr ? xhr.status : 0;
    var said = serverSentence(xhr);
    if (said) return said;
    if (status >= 500) return text("server");
    return text("refused");
  }

  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    if (!xhr || xhr.status < 400) return;
    // A correction form (a refused personal detail) is swapped in as the server sends it; any other refusal
    // becomes a message with "Try again" (htmx:responseError below), and the page's content stays as it was.
    var body = xhr.responseText || "";
    if (xhr.getResponseHeader("HX-Retarget") && body.indexOf("<form") !== -1) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
      return;
    }
    evt.detail.shouldSwap = false;
  });

  document.addEventListener("htmx:responseError", function (evt) {
    showMessage(failureText(evt.detail.xhr), retryOf(evt.detail));
  });

  document.addEventListener("htmx:sendError", function (evt) {
    setBadge("offline");
    showMessage(text("network"), retryOf(evt.detail));
  });

  document.addEventListener("htmx:timeout", function (evt) {
    showMessage(text("timeout"), retryOf(evt.detail));
  });

  // A request that worked clears the message its own earlier failure left.
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail.successful) {
      var area = document.getElementById("messages");
      if (area && area.dataset.failedFrom && evt.detail.elt && evt.detail.elt.id === area.dataset.failedFrom) {
        area.replaceChildren();
      }
    }
  });

  // --- The Live badge: Offline while the socket is closed, Live again once the server says so -----------

  var socketOpen = false;
  var socketWasClosed = false;

  function setBadge(state) {
    var badge = document.getElementById("live-status");
    if (!badge) return;
    if (state === "offline") {
      badge.className = "live off";
      badge.textContent = text("offline");
      badge.title = text("offlineTitle");
    } else if (state === "live") {
      badge.className = "live on";
      badge.textContent = text("live");
      badge.title = text("liveTitle");
    } else {
      badge.className = "live";
      badge.textContent = "";
    }
  }

  // --- Catching up: after the socket was interrupted, the page reads its live parts again ------------------
  //
  // What a page marks `data-refresh-on-reconnect` (an element with an id) is read again from the page's address,
  // all parts in one request (htmx's, so HX-Request is sent and a failure is said like any other). A part the
  // answer holds by its id is replaced by it; a part marked `data-refresh-on-reconnect="inner"` whose answer is its
  // content alone (the board answers htmx with its list's block) gets that content. The element holding the socket
  // (`ws-connect`) must not be inside a part: replacing it would close and reopen the socket. Sections the reader
  // had opened or closed stay so (a city opened again loads its cards again), and a tap waiting for its answer
  // inside a part is let finish first.

  var POLL_MS = 50;
  var GIVE_UP_MS = 15000;

  function holder() {
    // The request is sent from an element that stays in the page: htmx drops the answer of a request whose
    // element was replaced meanwhile.
    var existing = document.getElementById("live-refresh");
    if (existing) return existing;
    var span = document.createElement("span");
    span.id = "live-refresh";
    span.hidden = true;
    document.body.appendChild(span);
    return span;
  }

  function busyInside(elements) {
    return elements.some(function (element) {
      return element.isConnected && (element.matches(".htmx-request") || element.querySelector(".htmx-request"));
    });
  }

  // Runs `then` once no request is in flight inside `elements`, or after a long while whatever happened (then
  // `then(true)`).
  function whenIdle(elements, then) {
    var started = Date.now();
    (function check() {
      if (!busyInside(elements)) {
        then(false);
      } else if (Date.now() - started > GIVE_UP_MS) {
        then(true);
      } else {
        window.setTimeout(check, POLL_MS);
      }
    })();
  }

  function sectionsOf(part) {
    var state = {};
    part.querySelectorAll("details[id]").forEach(function (section) {
      state[section.id] = section.open;
    });
    return state;
  }

  function restoreSections(state) {
    Object.keys(state).forEach(function (id) {
      var section = document.getElementById(id);
      if (section && section.tagName === "DETAILS" && section.open !== state[id]) section.open = state[id];
    });
  }

  // What the person typed in a part (a reason being written) is put back into the same field of the new part:
  // the same form (by its action) and the same name.
  function fieldKey(field) {
    return (field.form ? field.form.getAttribute("action") : "") + "|" + field.name;
  }

  function typedIn(part) {
    var typed = {};
    part.querySelectorAll("input[name], textarea[name]").forEach(function (field) {
      if (field.type === "hidden" || field.type === "checkbox" || field.type === "radio") return;
      if (field.value !== field.defaultValue) typed[fieldKey(field)] = field.value;
    });
    return typed;
  }

  function restoreTyped(typed) {
    var keys = Object.keys(typed);
    if (!keys.length) return;
    document.querySelectorAll("input[name], textarea[name]").forEach(function (field) {
      var key = fieldKey(field);
      if (Object.prototype.hasOwnProperty.call(typed, key)) field.value = typed[key];
    });
  }

  function applyRefresh(parts, html) {
    var answer = new DOMParser().parseFromString(html, "text/html");
    parts.forEach(function (part) {
      delete part.dataset.refreshing;
      if (!part.isConnected) return;
      var sections = sectionsOf(part);
      var typed = typedIn(part);
      var fresh = answer.getElementById(part.id);
      if (fresh) {
        window.htmx.swap(part, fresh.outerHTML, { swapStyle: "outerHTML" });
      } else if (part.dataset.refreshOnReconnect === "inner") {
        window.htmx.swap(part, html, { swapStyle: "innerHTML" });
      } else {
        return;
      }
      restoreSections(sections);
      restoreTyped(typed);
    });
    flushDeferred();
  }

  var refreshing = false;
  // Taps that change something inside a live part (an Arrival, an approval), counted: a re-read sent before such a
  // tap may be answered after it, with the counts from before it; that answer is dropped and the parts read again.
  var partWrites = 0;

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var config = evt.detail.requestConfig || {};
    var elt = evt.detail.elt;
    if (config.verb && config.verb !== "get" && elt && elt.closest && elt.closest("[data-refresh-on-reconnect]")) {
      partWrites += 1;
    }
  });

  function refreshLiveParts() {
    if (!window.htmx || refreshing) return;
    var parts = Array.prototype.slice.call(document.querySelectorAll("[data-refresh-on-reconnect][id]"));
    if (!parts.length) return;
    refreshing = true;
    // From here, socket messages for these parts wait for the answer (deferMessage below): the answer may have
    // been read before them.
    parts.forEach(function (part) {
      part.dataset.refreshing = "1";
    });
    whenIdle(parts, function () {
      var writesAtStart = partWrites;
      var overtaken = false;
      window.htmx
        .ajax("GET", window.location.pathname + window.location.search, {
          source: holder(),
          swap: "none",
          handler: function (elt, info) {
            var xhr = info.xhr;
            if (partWrites !== writesAtStart) {
              overtaken = true;
            } else if (xhr.status >= 200 && xhr.status < 300) {
              applyRefresh(parts, xhr.responseText || "");
            } else {
              showMessage(failureText(xhr), refreshLiveParts);
            }
          },
        })
        .catch(function () {})
        .finally(function () {
          refreshing = false;
          parts.forEach(function (part) {
            delete part.dataset.refreshing;
          });
          flushDeferred();
          if (overtaken) refreshLiveParts();
        });
    });
  }

  // --- Socket messages that would land where an answer is awaited wait for it ---------------------------------
  //
  // A message whose swap targets an element with a request in flight inside it (an approver's "Approve" in the
  // inbox item the message moves, a part being read again) is applied after that request's answer: replacing the
  // element first would make htmx drop the answer, and an answer read before the message must not undo it. Later
  // messages wait behind it, so they are applied in the order they came.

  var deferred = [];
  var waitingOn = [];

  function targetsOf(message) {
    var template = document.createElement("template");
    template.innerHTML = message;
    var targets = [];
    Array.prototype.forEach.call(template.content.children, function (child) {
      var how = child.getAttribute("hx-swap-oob") || "true";
      var colon = how.indexOf(":");
      var selector = colon > 0 ? how.slice(colon + 1) : child.id ? "#" + CSS.escape(child.id) : "";
      if (!selector) return;
      try {
        document.querySelectorAll(selector).forEach(function (target) {
          targets.push(target);
        });
      } catch (e) {
        // a selector this page cannot read: htmx will say so when it swaps
      }
    });
    return targets;
  }

  function awaited(targets) {
    return targets.filter(function (target) {
      return (
        target.closest("[data-refreshing]") || target.matches(".htmx-request") || target.querySelector(".htmx-request")
      );
    });
  }

  // `force`: a request has been awaited too long; what waited is applied anyway.
  function flushDeferred(force) {
    if (!deferred.length || refreshing) return;
    if (!force && busyInside(waitingOn)) return;
    var messages = deferred;
    deferred = [];
    waitingOn = [];
    messages.forEach(function (message) {
      var busy = force ? [] : awaited(targetsOf(message));
      if (busy.length || deferred.length) {
        deferMessage(message, busy);
      } else {
        window.htmx.swap(document.body, message, { swapStyle: "none" });
      }
    });
  }

  function deferMessage(message, busy) {
    deferred.push(message);
    waitingOn = waitingOn.concat(busy);
    whenIdle(waitingOn, function (gaveUp) {
      flushDeferred(gaveUp);
    });
  }

  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    var message = evt.detail.message;
    if (typeof message !== "string" || !window.htmx) return;
    var busy = deferred.length ? [] : awaited(targetsOf(message));
    if (deferred.length || busy.length) {
      evt.preventDefault();
      deferMessage(message, busy);
    }
  });

  document.addEventListener("htmx:wsClose", function () {
    socketOpen = false;
    socketWasClosed = true;
    setBadge("offline");
  });

  document.addEventListener("htmx:wsOpen", function () {
    socketOpen = true;
    if (socketWasClosed) {
      socketWasClosed = false;
      refreshLiveParts();
    }
  });

  window.addEventListener("offline", function () {
    setBadge("offline");
  });

  window.addEventListener("online", function () {
    // The socket may have survived a short loss: the badge is Live again and the page catches up. A closed
    // socket reconnects on its own (htmx's ws extension) and the server then sends the Live badge.
    if (socketOpen) {
      setBadge("live");
      refreshLiveParts();
    } else if (!document.querySelector("[ws-connect]")) {
      setBadge("none");
    }
  });

  // --- Send once: a form's buttons are disabled while it is being sent --------------------------------------

  function submitButtons(form) {
    var inside = Array.prototype.slice.call(
      form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]")
    );
    var outside = form.id ? Array.prototype.slice.call(document.querySelectorAll('[form="' + form.id + '"]')) : [];
    return inside.concat(outside);
  }

  function setSending(form, sending) {
    if (sending) {
      form.dataset.sending = "1";
      form.setAttribute("aria-busy", "true");
    } else {
      delete form.dataset.sending;
      form.removeAttribute("aria-busy");
    }
    submitButtons(form).forEach(function (button) {
      if (sending) {
        if (!button.disabled) {
          button.disabled = true;
          button.dataset.disabledWhileSending = "1";
        }
      } else if (button.dataset.disabledWhileSending) {
        button.disabled = false;
        delete button.dataset.disabledWhileSending;
      }
    });
  }

  // htmx forms: disabled from the request's start to its end, whatever the answer.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = evt.detail.elt && evt.detail.elt.closest ? evt.detail.elt.closest("form") : null;
    if (form) setSending(form, true);
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt && evt.detail.elt.closest ? evt.detail.elt.closest("form") : null;
    if (form) setSending(form, false);
    if (!evt.detail.successful) {
      var area = document.getElementById("messages");
      if (area && evt.detail.elt && evt.detail.elt.id) area.dataset.failedFrom = evt.detail.elt.id;
    }
  });

  // Plain forms (POST, then a new page): a second submit while the first is on its way is dropped, and the
  // buttons are disabled once the browser has taken the first one's values (the clicked button's included).
  document.addEventListener(
    "submit",
    function (evt) {
      var form = evt.target;
      if (!(form instanceof HTMLFormElement) || (form.method || "").toLowerCase() !== "post") return;
      if (form.dataset.sending) {
        evt.preventDefault();
        return;
      }
      if (form.hasAttribute("hx-post") || form.hasAttribute("data-hx-post")) return; // htmx sends it
      if (navigator.onLine === false) {
        evt.preventDefault();
        setBadge("offline");
        var submitter = evt.submitter;
        showMessage(text("network"), function () {
          form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
        });
        return;
      }
      form.dataset.sending = "1";
      window.setTimeout(function () {
        if (!evt.defaultPrevented) setSending(form, true);
        else delete form.dataset.sending;
      }, 0);
    },
    false
  );

  // Back to a page kept by the browser (the back button): its forms can be sent again.
  window.addEventListener("pageshow", function (evt) {
    if (!evt.persisted) return;
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      setSending(form, false);
    });
  });

  // --- A box that scrolls sideways (a wide table on a phone) can be reached and scrolled from the keyboard ------

  var SCROLLERS = "table, pre, .table-wrap, .history, .grants, .rules-diff, .scroll-x";

  function focusableScrollers(root) {
    (root || document).querySelectorAll(SCROLLERS).forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      var style = scrolls ? window.getComputedStyle(box).overflowX : "";
      if (scrolls && (style === "auto" || style === "scroll")) {
        if (!box.hasAttribute("tabindex")) {
          box.setAttribute("tabindex", "0");
          box.dataset.scrollFocus = "1";
        }
      } else if (box.dataset.scrollFocus) {
        box.removeAttribute("tabindex");
        delete box.dataset.scrollFocus;
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      focusableScrollers();
    });
  } else {
    focusableScrollers();
  }
  window.addEventListener("resize", function () {
    focusableScrollers();
  });
  document.addEventListener("htmx:afterSettle", function (evt) {
    var target = evt.detail && evt.detail.target;
    focusableScrollers(target && target.parentElement ? target.parentElement : document);
  });

  // --- Ask first: templates/macros.html `confirm_submit` -----------------------------------------------------

  function confirmParts(button) {
    var step = button.closest(".confirm-step");
    if (!step) return null;
    return {
      step: step,
      ask: step.querySelector("[data-confirm-ask]"),
      question: step.querySelector(".confirm-question"),
      yes: step.querySelector("[data-confirm-yes]"),
    };
  }

  document.addEventListener("click", function (evt) {
    var target = evt.target instanceof Element ? evt.target : null;
    if (!target) return;
    var ask = target.closest("[data-confirm-ask]");
    if (ask) {
      var parts = confirmParts(ask);
      if (!parts || !parts.question) return;
      // The form's own checks first (a required reason): the question comes once the form could be sent.
      var form = ask.form;
      if (form && !form.reportValidity()) {
        evt.preventDefault();
        return;
      }
      evt.preventDefault();
      ask.hidden = true;
      ask.setAttribute("aria-expanded", "true");
      parts.question.hidden = false;
      if (parts.yes) parts.yes.focus();
      return;
    }
    var cancel = target.closest("[data-confirm-cancel]");
    if (cancel) {
      var back = confirmParts(cancel);
      if (!back) return;
      evt.preventDefault();
      back.question.hidden = true;
      back.ask.hidden = false;
      back.ask.setAttribute("aria-expanded", "false");
      back.ask.focus();
    }
  });

  // Escape answers "Cancel" to an open question.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    var open = document.activeElement && document.activeElement.closest(".confirm-question:not([hidden])");
    if (open) {
      var cancel = open.querySelector("[data-confirm-cancel]");
      if (cancel) cancel.click();
    }
  });
})();
