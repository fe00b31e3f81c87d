// Keyboard-first review: number keys pick a label, Enter confirms, S skips for now,
// Shift+S passes to others, U undoes my last decision, N writes a note (Esc leaves it).
// A picked-but-unsent label and note are kept in localStorage per project and item, so a
// reload does not lose them; they are dropped once the decision is sent.
(function () {
  function form() { return document.getElementById("decision"); }

  function draftKey() {
    const f = form();
    return f ? f.dataset.draftKey : null;
  }

  function saveDraft() {
    const f = form();
    const key = draftKey();
    if (!key) return;
    const picked = f.querySelector('input[name="label"]:checked');
    const note = f.elements.note ? f.elements.note.value : "";
    try {
      localStorage.setItem(key, JSON.stringify({ label: picked ? picked.value : null, note: note }));
    } catch (err) { /* storage full or disabled: the draft just is not kept */ }
  }

  function restoreDraft() {
    const f = form();
    const key = draftKey();
    if (!key) return;
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(key) || "null"); } catch (err) { draft = null; }
    if (!draft) return;
    if (draft.label) {
      const radio = Array.from(f.querySelectorAll('input[name="label"]'))
        .find(function (r) { return r.value === draft.label; });
      if (radio) radio.checked = true;
    }
    if (draft.note && f.elements.note) f.elements.note.value = draft.note;
  }

  function submit(action) {
    const f = form();
    if (!f) return;
    const button = f.querySelector('button[data-action="' + action + '"]');
    if (button && !button.disabled) {
      f.elements.action.value = action;
      f.requestSubmit(button);
    }
  }

  function undo() {
    const f = document.getElementById("undo");
    const button = f && f.querySelector("button");
    if (button && !button.disabled) f.requestSubmit(button);
  }

  // A key pressed right after a swap can beat htmx to the new form (it wires swapped content
  // up a moment later): wire it now, so the form is never sent as a plain page load.
  document.addEventListener("submit", function (event) {
    const f = event.target;
    if (!f.matches("#decision, #undo")) return;
    if (window.htmx) window.htmx.process(f);
    else event.preventDefault();
  }, true);

  // Mouse clicks choose the action the same way the keys do.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("#decision button[data-action]");
    if (button) button.form.elements.action.value = button.dataset.action;
  }, true);

  document.addEventListener("change", function (event) {
    if (event.target.closest("#decision")) saveDraft();
  });
  document.addEventListener("input", function (event) {
    if (event.target.closest("#decision")) saveDraft();
  });

  // A label decision that reached the server clears its draft.
  let sending = null;
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    const f = event.detail.elt;
    sending = f && f.id === "decision" && f.elements.action.value === "label"
      ? f.dataset.draftKey : null;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (sending && event.detail.successful) localStorage.removeItem(sending);
    sending = null;
  });
  document.body.addEventListener("htmx:afterSwap", restoreDraft);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" && event.target.type === "text") {
      if (event.key === "Escape") event.target.blur();
      return; // typing a note; Enter there submits the form natively
    }
    if (tag === "textarea" || tag === "select") return;
    const f = form();
    if (event.key === "u" || event.key === "U") {
      event.preventDefault();
      undo();
      return;
    }
    if (!f) return;
    if (/^[1-9]$/.test(event.key)) {
      const radios = f.querySelectorAll('input[name="label"]');
      const radio = radios[Number(event.key) - 1];
      if (radio) { radio.checked = true; event.preventDefault(); saveDraft(); }
    } else if (event.key === "Enter") {
      event.preventDefault();
      submit("label");
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      submit(event.shiftKey ? "pass" : "skip");
    } else if (event.key === "n" || event.key === "N") {
      if (f.elements.note) { event.preventDefault(); f.elements.note.focus(); }
    }
  });

  restoreDraft();
})();
