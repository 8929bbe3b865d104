// Patient questionnaire pages: live progress count and C-SSRS branching (hide questions not asked).
(function () {
  "use strict";
  function init() {
    var form = document.querySelector("form.questionnaire");
    if (!form) return;
    var counter = document.querySelector("[data-answered]");
    var bar = document.querySelector(".progress-wrap progress");
    function update() {
      var answered = 0;
      form.querySelectorAll("fieldset.question").forEach(function (fs) {
        var rule = fs.getAttribute("data-asked-if");
        if (rule) {
          var parts = rule.split("=");
          var parent = form.querySelector('input[name="item_' + parts[0] + '"]:checked');
          var asked = parent && parent.value === parts[1];
          fs.hidden = !asked;
          if (!asked) fs.querySelectorAll("input").forEach(function (i) { i.checked = false; });
          return;
        }
        if (fs.querySelector("input:checked")) answered += 1;
      });
      if (counter) counter.textContent = String(answered);
      if (bar) bar.value = answered;
    }
    form.addEventListener("change", update);
    update();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
