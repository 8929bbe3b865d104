// ketaflow: the little behaviour pages need beyond htmx. No inline script anywhere (CSP).
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
});
document.addEventListener("click", (event) => {
  const el = event.target.closest("[data-print]");
  if (el) { event.preventDefault(); window.print(); }
});
