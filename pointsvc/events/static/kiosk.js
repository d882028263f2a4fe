// Kiosk screen: shows the event's rotating check-in code and the live count, refreshed
// without reloading. The kiosk token comes from the link the organiser created (?k=...)
// and is sent as a header, so it never ends up in image URLs or logs of the polls.
(function () {
  "use strict";
  var body = document.body;
  var eventId = body.getAttribute("data-event-id");
  var token = new URLSearchParams(window.location.search).get("k") || "";
  var direction = "in";
  var timer = null;
  var lastUrl = null;
  var base = "/events/" + encodeURIComponent(eventId) + "/kiosk";

  function get(path, kind) {
    return fetch(base + path, { headers: { "X-Kiosk-Token": token }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return kind === "blob" ? response.blob() : response.json();
      });
  }

  function show(message) { document.getElementById("status").textContent = message; }

  function refresh() {
    clearTimeout(timer);
    get("/state?direction=" + direction, "json").then(function (state) {
      document.getElementById("count").textContent = String(state.inside_count);
      if (state.status !== "published") { show("活动未开放签到 Check-in is not open"); }
      else { show(""); }
      if (state.url !== lastUrl) {
        lastUrl = state.url;
        return get("/code.png?direction=" + direction, "blob").then(function (blob) {
          var img = document.getElementById("code");
          var old = img.src;
          img.src = URL.createObjectURL(blob);
          if (old && old.indexOf("blob:") === 0) { URL.revokeObjectURL(old); }
        });
      }
    }).catch(function (err) {
      show("连接中断，正在重试 Connection lost, retrying (" + err.message + ")");
    }).then(function () {
      // Poll every 5 s: the code rotates every 30 s and the count moves as people arrive.
      timer = setTimeout(refresh, 5000);
    });
  }

  function choose(which) {
    direction = which;
    lastUrl = null;
    ["in", "out"].forEach(function (id) {
      var button = document.getElementById(id);
      button.className = id === which ? "active" : "";
      button.setAttribute("aria-pressed", id === which ? "true" : "false");
    });
    refresh();
  }

  document.getElementById("in").addEventListener("click", function () { choose("in"); });
  document.getElementById("out").addEventListener("click", function () { choose("out"); });
  refresh();
}());
