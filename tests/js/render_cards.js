#!/usr/bin/env node
// Renders every *.json Adaptive Card in a folder with the official renderer (npm `adaptivecards`)
// under jsdom, targeting schema 1.5, and prints one JSON report on stdout:
//   {"renderer": "<version>", "cards": {"<file>": {"parseEvents": [...], "validationEvents": [...],
//    "rendered": bool, "buttons": n, "executeActions": n, "text": "<visible text>"}},
//    "diagnostics": [<lines the renderer logged>]}
// Exit code 0 when the report was produced (the Python test judges it), 2 on usage errors.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { JSDOM } = require("jsdom");

const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>", {
  pretendToBeVisual: true,
  url: "https://teams.invalid/",
});
// Expose the jsdom window's DOM globals (HTMLElement, HTMLButtonElement, ...) to the renderer.
for (const name of Object.getOwnPropertyNames(dom.window)) {
  if (!(name in global)) {
    Object.defineProperty(global, name, {
      configurable: true,
      get: () => dom.window[name],
    });
  }
}
// jsdom does not implement innerText, which the renderer uses to set text: map it to textContent.
Object.defineProperty(dom.window.HTMLElement.prototype, "innerText", {
  configurable: true,
  get() { return this.textContent; },
  set(value) { this.textContent = value; },
});
// Keep stdout for the JSON report only: collect whatever the renderer logs.
const diagnostics = [];
for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => diagnostics.push(`${level}: ${args.map(String).join(" ")}`);
}

// lib/ is extension-less ESM that Node cannot load; dist/ is the official UMD bundle.
const AC = require("adaptivecards/dist/adaptivecards.js");

function describe(event) {
  return {
    phase: AC.ValidationPhase[event.phase],
    event: AC.ValidationEvent[event.event],
    message: event.message,
  };
}

function collectParseEvents(context) {
  const events = [];
  for (let i = 0; i < context.eventCount; i++) {
    events.push(describe(context.getEventAt(i)));
  }
  return events;
}

function countExecuteActions(card) {
  // getAllActions() may list an action more than once; count distinct objects.
  const unique = new Set(card.getAllActions().filter((a) => a instanceof AC.ExecuteAction));
  return unique.size;
}

function renderOne(json) {
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext(AC.Versions.v1_5);
  card.parse(json, context);
  const validation = card.validateProperties();
  const element = card.render();
  if (element) document.body.appendChild(element);
  const report = {
    parseEvents: collectParseEvents(context),
    validationEvents: validation.validationEvents.map(describe),
    rendered: Boolean(element),
    buttons: element ? element.querySelectorAll("button").length : 0,
    executeActions: countExecuteActions(card),
    text: element ? element.textContent : "",
  };
  if (element) element.remove();
  return report;
}

function main(argv) {
  if (argv.length !== 1) {
    process.stderr.write("usage: render_cards.js <folder-with-card-json>\n");
    return 2;
  }
  const folder = argv[0];
  const files = fs.readdirSync(folder).filter((f) => f.endsWith(".json")).sort();
  const cards = {};
  for (const file of files) {
    const json = JSON.parse(fs.readFileSync(path.join(folder, file), "utf8"));
    try {
      cards[file] = renderOne(json);
    } catch (err) {
      cards[file] = { error: String(err && err.stack ? err.stack : err), rendered: false };
    }
  }
  const version = require("adaptivecards/package.json").version;
  process.stdout.write(JSON.stringify({ renderer: version, cards, diagnostics }) + "\n");
  return 0;
}

process.exitCode = main(process.argv.slice(2));
