// Keyboard-first review: number keys pick a label, Enter confirms, S skips.
(function () {
  function form() { return document.getElementById("decision"); }

  function submit(action) {
    const f = form();
    if (!f) return;
    const button = f.querySelector('button[value="' + action + '"]');
    if (button && !button.disabled) f.requestSubmit(button);
  }

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
