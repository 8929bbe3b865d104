// Keyboard-first vitals entry: Enter in a field moves to the next empty one, submits at the end.
document.addEventListener("keydown", function (event) {
  var form = event.target.form;
  if (!form || form.id !== "vitals-form" || event.key !== "Enter") return;
  var inputs = Array.prototype.slice.call(form.querySelectorAll("input:not([type=hidden])"));
  var index = inputs.indexOf(event.target);
  if (index >= 0 && index < inputs.length - 2 && event.target.value !== "") {
    event.preventDefault();
    inputs[index + 1].focus();
  }
});
