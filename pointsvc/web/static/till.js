// The till's scan field. A handheld scanner types the code and presses Enter, which submits
// the form by itself; this file only keeps the field focused, and offers the camera where
// the browser has BarcodeDetector (manual typing stays the fallback).
(function () {
  var form = document.getElementById("scan-form");
  if (!form) return;
  var field = form.querySelector("[name=pay_code]");
  field.addEventListener("input", function () { field.value = field.value.toUpperCase(); });

  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  var box = form.querySelector(".camera"), video = box.querySelector("video");
  box.hidden = false;
  box.querySelector(".camera-start").addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream; video.hidden = false; video.play();
        var look = function () {
          detector.detect(video).then(function (codes) {
            if (codes.length) {
              stream.getTracks().forEach(function (t) { t.stop(); });
              field.value = codes[0].rawValue.trim().toUpperCase();
              form.requestSubmit();
            } else { requestAnimationFrame(look); }
          }).catch(function () { requestAnimationFrame(look); });
        };
        look();
      })
      .catch(function () { box.hidden = true; field.focus(); });
  });
})();
