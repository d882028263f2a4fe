// The console's copy buttons: copy the text of the field named by data-copy. Without
// JavaScript the button stays hidden (.js-only) and the field can be selected by hand.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var field = document.getElementById(button.dataset.copy);
  if (!field) return;
  field.select();
  var done = function () { button.textContent = button.dataset.done; };
  if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () {});
  else if (document.execCommand("copy")) done();
});
