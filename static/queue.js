// Keyboard-first review: number keys pick a label, Enter confirms, S skips.
(function () {
  function form() { return document.getElementById("decision"); }

  function submit(action) {
    const f = form();
    if (!f) return;
    const button = f.querySelector('button[data-action="' + action + '"]');
    if (button && !button.disabled) {
      f.elements.action.value = action;
      f.requestSubmit(button);
    }
  }

  // Mouse clicks choose the action the same way the keys do.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("#decision button[data-action]");
    if (button) button.form.elements.action.value = button.dataset.action;
  }, true);

  document.addEventListener("keydown", function (event) {
    const f = form();
    if (!f || event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" && event.target.type === "text") return;
    if (tag === "textarea") return;
    if (/^[1-9]$/.test(event.key)) {
      const radios = f.querySelectorAll('input[name="label"]');
      const radio = radios[Number(event.key) - 1];
      if (radio) { radio.checked = true; event.preventDefault(); }
    } else if (event.key === "Enter") {
      event.preventDefault();
      submit("label");
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      submit("skip");
    }
  });
})();
