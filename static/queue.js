// Keyboard-first review: number keys pick a label, Enter confirms, S skips for now,
// Shift+S passes to others, U undoes my last decision, N writes a note (Esc leaves it), G shows
// or hides the project's guidelines. Enter with no label picked sends nothing and says so.
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

  // Tell screen readers (the page's one live region, outside the swapped fragment: a region
  // inserted with its text is often not read out).
  function announce(text) {
    const region = document.getElementById("queue-status");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  // After a swap: read out the confirmation of the decision just stored, if any.
  function announceSaved() {
    const saved = document.querySelector("#queue-item .queue-saved");
    if (saved) announce(saved.dataset.announce);
  }

  // With nothing pre-selected, Enter waits for a label instead of sending none.
  function pickFirst(f) {
    const hint = f.querySelector("#pick-first");
    if (hint) hint.hidden = false;
    announce(hint ? hint.textContent : "Pick a label first");
  }

  function guidelines() { return document.getElementById("guidelines"); }

  function showGuidelines(open) {
    const panel = guidelines();
    if (!panel) return;
    panel.hidden = !open;
    const toggle = document.getElementById("guidelines-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  // The guidelines open by themselves on a user's first visit to a project's queue (this
  // browser remembers it per project); afterwards G or the button shows them.
  function openGuidelinesOnFirstVisit() {
    const panel = guidelines();
    if (!panel) return;
    try {
      if (localStorage.getItem(panel.dataset.seenKey)) return;
      localStorage.setItem(panel.dataset.seenKey, "1");
    } catch (err) { /* storage disabled: show them each time rather than never */ }
    showGuidelines(true);
  }

  function submit(action) {
    const f = form();
    if (!f) return;
    if (action === "label" && !f.querySelector('input[name="label"]:checked')) {
      pickFirst(f);
      return;
    }
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
    const noLabel = f.id === "decision" && f.elements.action.value === "label" &&
      !f.querySelector('input[name="label"]:checked');
    if (noLabel) { // Enter in the note field, with no label picked: nothing is sent
      event.preventDefault();
      event.stopPropagation();
      pickFirst(f);
      return;
    }
    if (window.htmx) window.htmx.process(f);
    else event.preventDefault();
  }, true);

  // Mouse clicks choose the action the same way the keys do; Confirm with no label picked
  // says so instead of sending.
  document.addEventListener("click", function (event) {
    if (event.target.closest("#guidelines-toggle")) {
      showGuidelines(guidelines().hidden);
      return;
    }
    const button = event.target.closest("#decision button[data-action]");
    if (!button) return;
    button.form.elements.action.value = button.dataset.action;
    if (button.dataset.action === "label" && !button.form.querySelector('input[name="label"]:checked')) {
      event.preventDefault();
      event.stopPropagation();
      pickFirst(button.form);
    }
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
  document.body.addEventListener("htmx:afterSwap", announceSaved);

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
    if ((event.key === "g" || event.key === "G") && guidelines()) {
      event.preventDefault();
      showGuidelines(guidelines().hidden);
      return;
    }
    if (!f) return;
    if (/^[0-9]$/.test(event.key)) {
      // a kind's editor says how number keys pick (data-keys="value": the label that is the
      // key itself, a ranking grade); by default the n-th label
      const radios = Array.from(f.querySelectorAll('input[name="label"]'));
      const radio = f.querySelector('[data-keys="value"]')
        ? radios.find(function (r) { return r.value === event.key; })
        : radios[Number(event.key) - 1];
      if (radio) {
        radio.checked = true;
        event.preventDefault();
        saveDraft();
        const hint = f.querySelector("#pick-first");
        if (hint) hint.hidden = true;
      }
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
  openGuidelinesOnFirstVisit();
})();
