// The survival follow-up editor (templates/kinds/survival/annotate.html): two radios named
// "label" carry whole annotations, "<duration> 1" (event) and "<duration> 0" (censored), so
// queue.js's keys, drafts and Enter treat them like any kind's labels. Editing the duration
// rewrites both values; 0 picks "censored" (1 is queue.js's first radio, "event"), D moves
// to the duration. A draft with an edited duration is restored here, since queue.js looks
// for a radio with the draft's exact value.
(function () {
  function valid(text) {
    const value = Number(text.trim());
    return text.trim() !== "" && Number.isFinite(value) && value > 0;
  }

  function sync(root) {
    const input = root.querySelector("[data-duration]");
    const problem = root.querySelector("[data-duration-problem]");
    const duration = input.value.trim();
    root.querySelectorAll('input[name="label"]').forEach(function (radio) {
      radio.value = duration + " " + radio.dataset.event;
    });
    const ok = valid(duration);
    input.setAttribute("aria-invalid", ok ? "false" : "true");
    if (problem) problem.hidden = ok;
  }

  function restore(root) {
    const form = root.closest("form");
    const key = form && form.dataset.draftKey;
    let draft = null;
    try { draft = key ? JSON.parse(localStorage.getItem(key) || "null") : null; } catch (err) { draft = null; }
    if (!draft || !draft.label) return;
    const parts = String(draft.label).split(" ");
    if (parts.length !== 2) return;
    root.querySelector("[data-duration]").value = parts[0];
    sync(root);
    const radio = root.querySelector('input[name="label"][data-event="' + parts[1] + '"]');
    if (radio) radio.checked = true;
  }

  function setUp() {
    document.querySelectorAll("[data-survival-editor]:not([data-ready])").forEach(function (root) {
      root.dataset.ready = "1";
      root.querySelector("[data-duration]").addEventListener("input", function () { sync(root); });
      restore(root);
    });
  }

  function pick(root, event) {
    const radio = root.querySelector('input[name="label"][data-event="' + event + '"]');
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true })); // queue.js keeps the draft
    const hint = document.getElementById("pick-first");
    if (hint) hint.hidden = true;
  }

  // Before queue.js (capture, on window); typing in a field goes to the field.
  window.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "select" || (tag === "input" && event.target.type === "text")) return;
    const root = document.querySelector("[data-survival-editor]");
    if (!root) return;
    if (event.key === "0" || event.key === "1") {
      pick(root, event.key);
    } else if (event.key === "d" || event.key === "D") {
      const input = root.querySelector("[data-duration]");
      input.focus();
      input.select();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }, true);

  setUp();
  document.addEventListener("DOMContentLoaded", setUp);
  document.body.addEventListener("htmx:afterSwap", setUp);
})();
