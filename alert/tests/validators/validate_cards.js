#!/usr/bin/env node
// validate_cards.js DIR: validates every Teams Workflows body (*.json) in DIR with the Adaptive Cards
// SDK (adaptivecards 3.0.6, docs/tooling.md §5). Exit 0 when all pass; otherwise exit 1 with one line per
// problem, "FILE: problem". Exit 2 on usage errors.
//
// Checks per body:
//   - at most MAX_BYTES bytes (Teams refuses posts above about 28 KB);
//   - {"type":"message","attachments":[one attachment]} with contentType
//     application/vnd.microsoft.card.adaptive and an AdaptiveCard of version 1.4 as content;
//   - only the element types entrawatch allows (TextBlock, FactSet, ColumnSet, Column, Container,
//     Action.OpenUrl): nothing else would render or be handled in a Workflows post; every TextBlock
//     has text, every FactSet facts with titles and values, every container something inside, every
//     Action.OpenUrl an https url;
//   - the SDK's parse events (unknown element or action types, invalid property values) with a
//     SerializationContext targeting 1.4, and card.validateProperties() events (missing required
//     values, empty collections): any event is a failure.
'use strict';

const fs = require('fs');
const path = require('path');

const MAX_BYTES = 28 * 1024;
const CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
const ALLOWED = new Set([
  'TextBlock',
  'FactSet',
  'ColumnSet',
  'Column',
  'Container',
  'Action.OpenUrl',
]);

function loadSdk() {
  // The SDK's UMD bundle needs a DOM; `require('adaptivecards')` fails on Node's ESM resolution.
  const { JSDOM } = require('jsdom');
  const dom = new JSDOM('<!DOCTYPE html><html><body></body></html>');
  const w = dom.window;
  global.window = w;
  global.document = w.document;
  if (typeof global.navigator === 'undefined') {
    global.navigator = w.navigator;
  }
  for (const name of Object.getOwnPropertyNames(w)) {
    if (/^(HTML|SVG|Node$|Element$|Event$|Text$|DocumentFragment$|CustomEvent$)/.test(name) && !(name in global)) {
      global[name] = w[name];
    }
  }
  return require('adaptivecards/dist/adaptivecards.js');
}

function eventText(AC, e) {
  const kind = AC.ValidationEvent[e.event] || e.event;
  return `${kind}: ${e.message}`;
}

/// Walks the card JSON and reports element and action types outside ALLOWED.
function checkTypes(node, where, problems) {
  if (Array.isArray(node)) {
    node.forEach((n, i) => checkTypes(n, `${where}[${i}]`, problems));
    return;
  }
  if (node === null || typeof node !== 'object') {
    return;
  }
  if (typeof node.type === 'string' && where !== 'content' && !ALLOWED.has(node.type)) {
    problems.push(`element type "${node.type}" at ${where} is not allowed`);
  }
  const nonEmpty = (v) => typeof v === 'string' && v.trim().length > 0;
  if (node.type === 'TextBlock' && !nonEmpty(node.text)) {
    problems.push(`TextBlock at ${where} has no text`);
  }
  if (node.type === 'FactSet') {
    const facts = Array.isArray(node.facts) ? node.facts : [];
    if (facts.length === 0) {
      problems.push(`FactSet at ${where} has no facts`);
    }
    facts.forEach((f, i) => {
      if (!nonEmpty(f.title) || !nonEmpty(f.value)) {
        problems.push(`fact ${where}.facts[${i}] needs a title and a value`);
      }
    });
  }
  if (node.type === 'Action.OpenUrl' && !(typeof node.url === 'string' && node.url.startsWith('https://'))) {
    problems.push(`Action.OpenUrl at ${where} needs an https url`);
  }
  for (const [key, list] of [['ColumnSet', 'columns'], ['Column', 'items'], ['Container', 'items']]) {
    if (node.type === key && !(Array.isArray(node[list]) && node[list].length > 0)) {
      problems.push(`${key} at ${where} has no ${list}`);
    }
  }
  for (const [k, v] of Object.entries(node)) {
    checkTypes(v, `${where}.${k}`, problems);
  }
}

function validate(AC, raw) {
  const problems = [];
  const bytes = Buffer.byteLength(raw, 'utf8');
  if (bytes > MAX_BYTES) {
    problems.push(`body is ${bytes} bytes, over ${MAX_BYTES}`);
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch (e) {
    return [`not JSON: ${e.message}`];
  }
  if (body.type !== 'message') {
    problems.push(`top-level type is ${JSON.stringify(body.type)}, not "message"`);
  }
  if (!Array.isArray(body.attachments) || body.attachments.length !== 1) {
    problems.push('attachments must hold exactly one attachment');
    return problems;
  }
  const att = body.attachments[0];
  if (att.contentType !== CONTENT_TYPE) {
    problems.push(`contentType is ${JSON.stringify(att.contentType)}`);
  }
  const content = att.content;
  if (!content || content.type !== 'AdaptiveCard') {
    problems.push('content.type must be "AdaptiveCard"');
    return problems;
  }
  if (content.version !== '1.4') {
    problems.push(`card version is ${JSON.stringify(content.version)}, not "1.4"`);
  }
  checkTypes(content, 'content', problems);

  const card = new AC.AdaptiveCard();
  const ctx = new AC.SerializationContext(AC.Versions.v1_4);
  card.parse(content, ctx);
  for (let i = 0; i < ctx.eventCount; i++) {
    problems.push(`parse: ${eventText(AC, ctx.getEventAt(i))}`);
  }
  for (const e of card.validateProperties().validationEvents) {
    problems.push(`validate: ${eventText(AC, e)}`);
  }
  return problems;
}

function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: validate_cards.js DIR');
    process.exit(2);
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (files.length === 0) {
    console.error(`validate_cards: no .json files in ${dir}`);
    process.exit(2);
  }
  const AC = loadSdk();
  let failed = 0;
  for (const f of files) {
    const problems = validate(AC, fs.readFileSync(path.join(dir, f), 'utf8'));
    for (const p of problems) {
      console.log(`${f}: ${p}`);
    }
    if (problems.length > 0) {
      failed++;
    }
  }
  console.log(`validate_cards: ${files.length - failed} of ${files.length} cards valid`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
