// The wallet's live parts (issue 12): the code refreshes itself before it expires, with a
// countdown, and the page shows within about a second that a till used it. Plain script, no
// build step, nothing from elsewhere; without it the page still works (reload for a new code).
"use strict";
(function () {
  var img = document.getElementById("qr");
  if (!img) { return; }
  var countdown = document.getElementById("countdown");
  var banner = document.getElementById("used-banner");
  var list = document.getElementById("redemptions");
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var left = parseInt(img.dataset.expiresIn, 10) || 0;
  var last = parseInt(img.dataset.last, 10) || 0;
  var pollMs = parseInt(img.dataset.pollMs, 10) || 1000;
  var REFRESH_BEFORE_S = 10;
  var refreshing = false;
  var offline = false;

  function show() {
    if (left <= 0) {
      countdown.textContent = countdown.dataset.expired;
      img.classList.add("stale");
    } else {
      var text = countdown.dataset.template.replace("{s}", String(left));
      countdown.textContent = offline ? text + " " + countdown.dataset.offline : text;
      img.classList.remove("stale");
    }
  }

  function refresh() {
    if (refreshing) { return; }
    refreshing = true;
    fetch("/wallet/code", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
      redirect: "manual"
    }).then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401 || r.status === 403) {
        window.location.assign("/wallet/signin?next=%2Fwallet");
        return null;
      }
      return r.json();
    }).then(function (body) {
      if (body && body.src) {
        img.src = body.src;
        img.dataset.token = body.token;
        left = body.expires_in;
        offline = false;
      }
    }).catch(function () {
      offline = true;
    }).finally(function () {
      refreshing = false;
      show();
    });
  }

  function tick() {
    left = Math.max(0, left - 1);
    if (left <= REFRESH_BEFORE_S) { refresh(); }
    show();
  }

  function poll() {
    if (document.hidden) { return; }
    fetch("/wallet/live?after=" + last, { credentials: "same-origin", redirect: "manual" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.redemptions.length) { return; }
        var newest = body.redemptions[0];
        last = newest.id;
        banner.textContent = newest.text;
        banner.hidden = false;
        var empty = list.querySelector(".empty");
        if (empty) { empty.remove(); }
        body.redemptions.slice().reverse().forEach(function (r) {
          var item = document.createElement("li");
          item.textContent = r.text;
          list.insertBefore(item, list.firstChild);
        });
        if (typeof body.available === "number") {
          document.getElementById("count-available").textContent = String(body.available);
          document.getElementById("count-used").textContent = String(body.used);
        }
        refresh(); // a code works once: the next bill needs a new one
      })
      .catch(function () { offline = true; show(); });
  }

  window.setInterval(tick, 1000);
  window.setInterval(poll, pollMs);
  show();
})();
