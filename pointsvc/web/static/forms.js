// Marks the page as scripted (for .js-only text) and keeps a confirm form from being sent
// twice by a double click. The server refuses a second spend anyway (each form carries
// its own idempotency key); this only saves the second round trip.
document.documentElement.classList.add("js");
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.classList.contains("once")) return;
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
});
