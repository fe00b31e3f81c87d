// The span editor of sequence-tagging items (queue and item page), keyboard first, and the
// read-only span views (reference lines, evidence sentences, the item page's facts).
//
// An annotation is the server's canonical string: "start:end:TYPE" per span (token offsets,
// end exclusive), sorted, space-joined; "O" when there is none. The editor keeps its form's one
// radio "label" set to that string and fires "change" on it, so static/queue.js submits and
// keeps drafts as for any kind; the editor reads such a draft back itself (queue.js restores a
// draft by matching a radio's value, which a string it has not seen never does).
//
// Keys (not while typing in a text field; Tab, Enter, S, U, N, G are left to the page):
//   1..9          set the selected span's type (on a token selection: a new span of that type)
//   0             remove the selected span (its tokens stay selected: a number key restores it)
//   Left / Right  select the previous / next span
//   Shift+Left / Shift+Right   move the selected span's (or token selection's) end one token
//   Alt+Left / Alt+Right, [ / ]   move its start one token
//   A             add a span of the first type over the token selection
// Mouse: click a span to select it, drag or click then Shift+click tokens to select a range,
// click a type to set it, "remove span" to remove the selected one.
(function () {
  "use strict";

  const NO_ENTITIES = "O";
  const COLOURS = 8; // .ent[data-colour] styles in assay.css

  // ---- annotation strings ------------------------------------------------------------------

  function byPosition(a, b) { return a.start - b.start || a.end - b.end; }

  // The spans of an annotation, or null when it is not a valid one for n tokens.
  function parse(value, n) {
    const text = (value || "").trim();
    if (text === "" || text === NO_ENTITIES) return [];
    const spans = [];
    for (const part of text.split(/\s+/)) {
      const m = /^(\d+):(\d+):(.+)$/.exec(part);
      if (!m) return null;
      spans.push({ start: Number(m[1]), end: Number(m[2]), type: m[3] });
    }
    spans.sort(byPosition);
    for (let k = 0; k < spans.length; k++) {
      const s = spans[k];
      if (s.start >= s.end || s.end > n) return null;
      if (k > 0 && s.start < spans[k - 1].end) return null;
    }
    return spans;
  }

  function encode(sorted) {
    return sorted
      .map(function (s) { return s.start + ":" + s.end + ":" + s.type; })
      .join(" ") || NO_ENTITIES;
  }

  // "start:end" (the rest, such as a type, ignored) as a range inside n tokens, or null.
  function parseRange(value, n) {
    const m = /^(\d+):(\d+)/.exec(value || "");
    if (!m) return null;
    const range = { start: Number(m[1]), end: Number(m[2]) };
    return range.start < range.end && range.end <= n ? range : null;
  }

  function inside(range, i) { return range !== null && range.start <= i && i < range.end; }

  function words(tokens, s) { return tokens.slice(s.start, s.end).join(" "); }

  function summary(tokens, spans) {
    if (!spans.length) return "No entities.";
    return spans.map(function (s) { return words(tokens, s) + ": " + s.type; }).join("; ") + ".";
  }

  function readJSON(text, fallback) {
    try { return JSON.parse(text); } catch (err) { return fallback; }
  }

  // ---- drawing a sentence -------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function colourOf(types, type) {
    const known = types.indexOf(type);
    if (known >= 0) return known % COLOURS;
    let hash = 0;
    for (let k = 0; k < type.length; k++) hash = (hash * 31 + type.charCodeAt(k)) >>> 0;
    return hash % COLOURS;
  }

  // The tokens into `target`, each span a group with its type; marks: focus (the suspicious
  // range), range (the token selection), selected (a span of `spans`).
  function draw(target, tokens, spans, types, marks) {
    target.textContent = "";
    const starts = new Map(spans.map(function (s) { return [s.start, s]; }));
    function token(i) {
      const node = element("span", "tok", tokens[i]);
      node.dataset.i = String(i);
      if (inside(marks.focus, i)) {
        node.classList.add("focus");
        if (i === marks.focus.start) node.classList.add("focus-start");
        if (i === marks.focus.end - 1) node.classList.add("focus-end");
      }
      if (inside(marks.range, i)) node.classList.add("in-range");
      return node;
    }
    let i = 0;
    while (i < tokens.length) {
      const span = starts.get(i);
      if (span) {
        const group = element("span", "ent");
        group.dataset.start = String(span.start);
        group.dataset.colour = String(colourOf(types, span.type));
        if (span === marks.selected) {
          group.classList.add("selected");
          group.setAttribute("aria-current", "true");
        }
        for (let j = span.start; j < span.end; j++) {
          group.append(token(j));
          if (j < span.end - 1) group.append(" ");
        }
        group.append(" ", element("span", "ent-type", span.type));
        target.append(group);
        i = span.end;
      } else {
        target.append(token(i));
        i += 1;
      }
      if (i < tokens.length) target.append(" ");
    }
  }

  // ---- read-only views ----------------------------------------------------------------------

  function showView(node) {
    const tokens = readJSON(node.dataset.tokens, null);
    if (!Array.isArray(tokens)) return;
    const spans = parse(node.dataset.annotation, tokens.length);
    if (spans === null) return; // not an annotation of this sentence: the fallback text stays
    const types = readJSON(node.dataset.types || "[]", []);
    draw(node, tokens, spans, types,
      { focus: parseRange(node.dataset.focus, tokens.length), range: null, selected: null });
    node.setAttribute("aria-label", summary(tokens, spans));
    node.dataset.drawn = "1";
  }

  // ---- the editor ---------------------------------------------------------------------------

  const editors = new WeakMap();

  function Editor(root) {
    this.root = root;
    this.radio = root.querySelector('input[name="label"]');
    this.tokens = readJSON(root.dataset.tokens, []);
    this.types = readJSON(root.dataset.types, []);
    this.focus = parseRange(root.dataset.focus, this.tokens.length);
    this.spans = parse(this.draft() || this.radio.value, this.tokens.length) ||
      parse(this.radio.value, this.tokens.length) || [];
    this.selected = null; // a span of this.spans
    this.range = null; // a token selection {start, end}
    this.anchor = null; // the token a drag or Shift+click extends from
    this.dragging = false;
    this.dragged = false;
    this.startSelection();
    this.radio.value = encode(this.spans);
    this.render("");
  }

  // A draft queue.js kept for this item (a reload must not lose span edits), if any.
  Editor.prototype.draft = function () {
    const form = this.root.closest("form");
    const key = form && form.dataset.draftKey;
    if (!key) return null;
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(key) || "null"); } catch (err) { draft = null; }
    return draft && typeof draft.label === "string" ? draft.label : null;
  };

  // The span that matches the suspicious range, else one that overlaps it, else the range itself
  // as a token selection; with no focus, the first span.
  Editor.prototype.startSelection = function () {
    const focus = this.focus;
    if (focus) {
      this.selected =
        this.spans.find(function (s) { return s.start === focus.start && s.end === focus.end; }) ||
        this.spans.find(function (s) { return s.start < focus.end && focus.start < s.end; }) ||
        null;
      if (!this.selected) this.range = { start: focus.start, end: focus.end };
    } else {
      this.selected = this.spans[0] || null;
    }
  };

  Editor.prototype.render = function (message) {
    draw(this.root.querySelector("[data-sentence]"), this.tokens, this.spans, this.types,
      { focus: this.focus, range: this.range, selected: this.selected });
    const selected = this.selected;
    this.root.querySelectorAll("[data-type]").forEach(function (chip) {
      chip.setAttribute("aria-pressed", selected && selected.type === chip.dataset.type ? "true" : "false");
    });
    const remove = this.root.querySelector("[data-remove]");
    if (remove) remove.disabled = !selected;
    this.root.querySelector("[data-summary]").textContent = summary(this.tokens, this.spans);
    let state;
    if (selected) state = "Selected: " + words(this.tokens, selected) + " (" + selected.type + ").";
    else if (this.range) state = "Selected tokens: " + words(this.tokens, this.range) + " (no entity).";
    else state = "Nothing selected.";
    this.root.querySelector("[data-selection]").textContent = message ? state + " " + message : state;
  };

  // After a change of the spans: the radio carries the new annotation, queue.js saves the draft.
  Editor.prototype.changed = function (message) {
    this.spans.sort(byPosition);
    this.radio.value = encode(this.spans);
    this.radio.checked = true;
    this.render(message || "");
    this.radio.dispatchEvent(new Event("change", { bubbles: true }));
  };

  Editor.prototype.setType = function (type) {
    if (this.selected) {
      this.selected.type = type;
      this.changed();
    } else if (this.range) {
      this.add(type);
    } else {
      this.render("Select a span or tokens first.");
    }
  };

  // A span of `type` over the token selection; spans it overlaps are replaced.
  Editor.prototype.add = function (type) {
    const range = this.range;
    if (!range) { this.render("Select tokens first: drag over them, or click one and Shift+click another."); return; }
    this.spans = this.spans.filter(function (s) { return s.end <= range.start || range.end <= s.start; });
    const span = { start: range.start, end: range.end, type: type };
    this.spans.push(span);
    this.selected = span;
    this.range = null;
    this.changed();
  };

  Editor.prototype.remove = function () {
    const span = this.selected;
    if (!span) { this.render("No span selected."); return; }
    this.spans = this.spans.filter(function (s) { return s !== span; });
    this.selected = null;
    this.range = { start: span.start, end: span.end };
    this.changed("Removed " + words(this.tokens, span) + " (" + span.type + ").");
  };

  // Select the previous (-1) or next (+1) span, from the selected span or the token selection.
  Editor.prototype.step = function (direction) {
    if (!this.spans.length) { this.render("There are no spans."); return; }
    let target;
    if (this.selected) {
      const k = this.spans.indexOf(this.selected) + direction;
      target = this.spans[Math.max(0, Math.min(this.spans.length - 1, k))];
    } else {
      const at = this.range ? this.range.start : 0;
      const after = this.spans.filter(function (s) { return s.start >= at; });
      const before = this.spans.filter(function (s) { return s.start < at; });
      target = direction > 0 ? (after[0] || before[before.length - 1])
        : (before[before.length - 1] || after[0]);
    }
    this.selected = target;
    this.range = null;
    this.render("");
  };

  // Move the start or end of the selected span (or of the token selection) by one token.
  Editor.prototype.move = function (side, direction) {
    const target = this.selected || this.range;
    if (!target) { this.render("Select a span or tokens first."); return; }
    const start = side === "start" ? target.start + direction : target.start;
    const end = side === "end" ? target.end + direction : target.end;
    if (start < 0 || end > this.tokens.length || start >= end) {
      this.render("It cannot move further.");
      return;
    }
    const self = this.selected;
    const blocking = self && this.spans.find(function (s) { return s !== self && s.start < end && start < s.end; });
    if (blocking) {
      this.render("It would overlap " + words(this.tokens, blocking) + " (" + blocking.type + ").");
      return;
    }
    target.start = start;
    target.end = end;
    if (self) this.changed();
    else this.render("");
  };

  // ---- mouse --------------------------------------------------------------------------------

  function tokenIndex(event) {
    const tok = event.target.closest && event.target.closest(".tok[data-i]");
    return tok ? Number(tok.dataset.i) : null;
  }

  function spanAt(editor, i) {
    return editor.spans.find(function (s) { return s.start <= i && i < s.end; }) || null;
  }

  // Drawing anew puts new tokens under the pointer, which fire mouseover again: an unchanged
  // selection is not drawn again.
  Editor.prototype.selectTokens = function (from, to) {
    const start = Math.min(from, to);
    const end = Math.max(from, to) + 1;
    if (!this.selected && this.range && this.range.start === start && this.range.end === end) return;
    this.range = { start: start, end: end };
    this.selected = null;
    this.render("");
  };

  Editor.prototype.mouseDown = function (event) {
    const i = tokenIndex(event);
    if (i === null || event.button !== 0 || !this.root.querySelector("[data-sentence]").contains(event.target)) return;
    event.preventDefault(); // no text selection while choosing tokens
    if (event.shiftKey) {
      const from = this.anchor !== null ? this.anchor
        : this.selected ? this.selected.start : this.range ? this.range.start : i;
      this.selectTokens(from, i);
      return;
    }
    this.anchor = i;
    this.dragging = true;
    this.dragged = false;
  };

  Editor.prototype.mouseOver = function (event) {
    if (!this.dragging) return;
    const i = tokenIndex(event);
    if (i === null || (i === this.anchor && !this.dragged)) return;
    this.dragged = true;
    this.selectTokens(this.anchor, i);
  };

  // A click without a drag: the span under it, or that one token.
  Editor.prototype.mouseUp = function () {
    if (!this.dragging) return;
    this.dragging = false;
    if (this.dragged) return;
    const span = spanAt(this, this.anchor);
    if (span) {
      this.selected = span;
      this.range = null;
      this.render("");
    } else {
      this.selectTokens(this.anchor, this.anchor);
    }
  };

  Editor.prototype.click = function (event) {
    const chip = event.target.closest("[data-type]");
    if (chip && this.root.contains(chip)) { this.setType(chip.dataset.type); return; }
    if (event.target.closest("[data-remove]")) this.remove();
  };

  // ---- wiring -------------------------------------------------------------------------------

  function editorOf(root) {
    let editor = editors.get(root);
    if (!editor) {
      editor = new Editor(root);
      editors.set(root, editor);
      root.addEventListener("mousedown", function (e) { editor.mouseDown(e); });
      root.addEventListener("mouseover", function (e) { editor.mouseOver(e); });
      root.addEventListener("click", function (e) { editor.click(e); });
    }
    return editor;
  }

  function activeEditor() {
    const root = document.querySelector("[data-span-editor]");
    return root ? editorOf(root) : null;
  }

  function setUp() {
    document.querySelectorAll("[data-span-editor]").forEach(editorOf);
    document.querySelectorAll("[data-span-view]:not([data-drawn])").forEach(showView);
  }

  function typing(target) {
    const tag = (target.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable) return true;
    return tag === "input" && !["radio", "checkbox", "button", "submit", "reset"].includes(target.type);
  }

  // Before queue.js (capture, on window): the keys used here go no further.
  window.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || typing(event.target)) return;
    const editor = activeEditor();
    if (!editor) return;
    const key = event.key;
    let handled = true;
    if (event.altKey) {
      if (key === "ArrowLeft") editor.move("start", -1);
      else if (key === "ArrowRight") editor.move("start", 1);
      else handled = false;
    } else if (/^[1-9]$/.test(key) && Number(key) <= editor.types.length) {
      editor.setType(editor.types[Number(key) - 1]);
    } else if (key === "0") {
      editor.remove();
    } else if (key === "ArrowLeft" || key === "ArrowRight") {
      const direction = key === "ArrowLeft" ? -1 : 1;
      if (event.shiftKey) editor.move("end", direction);
      else editor.step(direction);
    } else if (key === "[" || key === "]") {
      editor.move("start", key === "[" ? -1 : 1);
    } else if (key === "a" || key === "A") {
      editor.add(editor.types[0]);
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  window.addEventListener("mouseup", function () {
    const editor = activeEditor();
    if (editor) editor.mouseUp();
  });

  setUp();
  document.addEventListener("DOMContentLoaded", setUp);
  document.body.addEventListener("htmx:afterSwap", setUp);
})();
