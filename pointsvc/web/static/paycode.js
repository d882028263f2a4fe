// The pay code counts down and fetches a new one before the old one expires (each code is
// valid 60 s and works once). The deadline is counted from when the code arrived, on the
// phone's own clock, so a phone whose clock is wrong still counts right. Without
// JavaScript the page reloads itself instead (a <noscript> refresh).
(function () {
  var box = document.querySelector(".paycode");
  if (!box) return;
  var img = box.querySelector(".qr"), token = box.querySelector(".token");
  var counter = box.querySelector("[data-countdown]");
  var margin = 5; // seconds: swap before a till could read an expired code
  var deadline = Date.now() + Number(box.dataset.seconds) * 1000;
  var busy = false;

  function refresh() {
    busy = true;
    fetch(box.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (code) {
        img.src = code.image;
        token.textContent = code.token;
        deadline = Date.now() + code.valid_seconds * 1000;
        busy = false;
      })
      .catch(function () { window.location.reload(); });
  }

  function tick() {
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000) - margin);
    counter.textContent = String(left);
    if (left <= 0 && !busy) refresh();
  }
  tick();
  setInterval(tick, 1000);
})();
