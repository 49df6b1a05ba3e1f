// Audit: the latest signed tree head checked against the operator's key,
// an event's inclusion in it and its consistency with an earlier head, all
// checked here in the browser, from the log's own bytes (docs/audit.md);
// nothing is taken on the server's word. Beside them, how far the view
// trails the log, as the server reports it.

import { getBytes, getJson } from './api.js';
import { facts, fill, h, problemText, section } from './dom.js';
import * as f from './format.js';
import { go, hashOf } from './nav.js';
import { may } from './roles.js';
import {
  canonicalBytes, consistencyHolds, equal, fromBase64, headSigned, inclusionHolds, leafHash, readLogLine, webCrypto,
} from './verify.js';

const VERIFIED = 'verified';
const NOT_VERIFIED = 'does not verify';

function verdict(name, result) {
  // result: {ok: true|false, why} or {error}
  const word = result.error ? 'not checked' : result.ok ? VERIFIED : NOT_VERIFIED;
  const state = result.error ? 'error' : result.ok ? 'verified' : 'failed';
  return h('p', { class: `verdict ${state}`, 'data-verdict': name, 'data-result': state, role: 'status' },
    h('strong', { class: 'word' }, word), ' ', h('span', { class: 'why' }, result.error ?? result.why));
}

async function checked(check) {
  try {
    return await check();
  } catch (error) {
    return { error: error.detail ?? error.message ?? String(error) };
  }
}

/** Whether ``proof`` shows the event at its position is in the tree ``head`` signs. */
async function inclusion(proof, head, headResult) {
  if (!headResult.ok) return { ok: false, why: 'the tree head itself does not verify' };
  for (const name of ['position', 'leaf_index', 'tree_size']) {
    if (!Number.isSafeInteger(proof?.[name])) return { ok: false, why: `the proof has no whole number "${name}"` };
  }
  if (!Array.isArray(proof.proof) || typeof proof.leaf_hash !== 'string') return { ok: false, why: 'the proof has no "proof" list or "leaf_hash"' };
  if (proof.tree_size !== head.tree_size) {
    return { ok: false, why: `the proof is for a tree of ${proof.tree_size} events; the signed head covers ${head.tree_size}` };
  }
  const line = await getBytes('/v1/log', { after: proof.position - 1, limit: 1 });
  if (line.length === 0) return { ok: false, why: `the log has no event at position ${proof.position}` };
  const { event, body } = readLogLine(line);
  if (event.position !== proof.position) return { ok: false, why: `the log has no event at position ${proof.position}` };
  const leaf = await leafHash(canonicalBytes(event, body));
  let path;
  try {
    path = proof.proof.map(fromBase64);
  } catch {
    return { ok: false, why: 'a hash of the proof is not base64' };
  }
  if (!equal(leaf, fromBase64(proof.leaf_hash))) return { ok: false, why: 'the proof\'s leaf hash is not the hash of the event in the log' };
  const holds = await inclusionHolds(proof.leaf_index, proof.tree_size, leaf, path, fromBase64(head.root_hash));
  return holds
    ? { ok: true, why: `event ${event.position} (${f.topic(event.topic)}) is leaf ${proof.leaf_index} of the signed tree` }
    : { ok: false, why: 'the proof does not lead from the event to the signed root' };
}

const HASH_BYTES = 32;

/** A pasted earlier head: a witness file's line, or just its size and root. */
function readEarlier(text) {
  let earlier;
  try {
    earlier = JSON.parse(text);
  } catch {
    return { why: 'the earlier head is not JSON' };
  }
  if (!Number.isSafeInteger(earlier?.tree_size) || earlier.tree_size < 0) return { why: 'the earlier head has no whole number "tree_size"' };
  let root;
  try {
    root = fromBase64(String(earlier.root_hash));
  } catch {
    return { why: 'the earlier head\'s "root_hash" is not base64' };
  }
  if (root.length !== HASH_BYTES) return { why: `the earlier head's "root_hash" is not ${HASH_BYTES} bytes` };
  return { earlier, root };
}

/** Whether the latest signed head extends the earlier head pasted as ``text``. */
async function consistent(text, head, headResult, publicKey) {
  if (!headResult.ok) return { ok: false, why: 'the latest tree head itself does not verify' };
  const { earlier, root, why } = readEarlier(text);
  if (why) return { ok: false, why };
  const signed = typeof earlier.signature === 'string';
  if (signed) {
    const earlierResult = await headSigned(earlier, publicKey);
    if (!earlierResult.ok) return { ok: false, why: `the earlier head's signature: ${earlierResult.why}` };
  }
  if (earlier.tree_size > head.tree_size) {
    return { ok: false, why: `the earlier head covers ${earlier.tree_size} events, the latest only ${head.tree_size}` };
  }
  const proof = await getJson('/v1/audit/consistency', { first: earlier.tree_size, second: head.tree_size });
  if (proof.first !== earlier.tree_size || proof.second !== head.tree_size || !Array.isArray(proof.proof)) {
    return { ok: false, why: `the proof answered is not from ${earlier.tree_size} to ${head.tree_size} events` };
  }
  let path;
  try {
    path = proof.proof.map(fromBase64);
  } catch {
    return { ok: false, why: 'a hash of the proof is not base64' };
  }
  const holds = await consistencyHolds(proof.first, proof.second, path, root, fromBase64(head.root_hash));
  const how = signed ? 'the earlier head\'s signature holds and ' : 'the earlier head is not signed, so only its root is checked: ';
  return holds
    ? { ok: true, why: `${how}the tree of ${head.tree_size} events extends the tree of ${earlier.tree_size} unchanged (${path.length} hashes)` }
    : { ok: false, why: `the proof does not lead from the earlier root (${earlier.tree_size} events) to the latest (${head.tree_size})` };
}

// The kept heads offered to pick an earlier one from (newest first).
const KEPT_HEADS_LISTED = 50;

/** A list of the heads the server kept; picking one puts it in ``text``. */
async function keptHeads(text) {
  let page;
  try {
    page = await getJson('/v1/audit/tree-heads', { limit: KEPT_HEADS_LISTED });
  } catch (error) {
    return problemText(error);
  }
  const kept = page.heads;
  const select = h('select', { id: 'kept-head', name: 'kept-head', 'data-heads': kept.length, onchange: () => {
    const chosen = kept[Number(select.value)];
    text.value = chosen ? JSON.stringify(chosen) : '';
  } },
  h('option', { value: '' }, kept.length ? 'choose one…' : 'none kept yet'),
  kept.map((one, i) => h('option', { value: i, 'data-tree-size': one.tree_size }, `${one.tree_size} events, signed ${f.time(one.timestamp)}`)));
  return h('div', { class: 'field' },
    h('label', { for: 'kept-head' }, `A head the server kept (the latest ${KEPT_HEADS_LISTED})`), select);
}

async function consistencyForm(head, headResult, publicKey) {
  const text = h('textarea', { id: 'earlier-head', name: 'earlier-head', rows: 4, spellcheck: 'false', 'aria-describedby': 'earlier-head-hint',
    placeholder: '{"tree_size":20,"root_hash":"…","timestamp":"…","signature":"…","key_id":"…"}' });
  const result = h('div', { 'aria-live': 'polite' });
  return [
    h('p', { class: 'muted' }, 'Pick an earlier head the server kept (GET /v1/audit/tree-heads), or paste one you kept yourself — ',
      'a line of a witness file, or the JSON GET /v1/audit/tree-head answered then; a size and a root alone are checked too, without a signature. ',
      'A head you kept proves more than one the server kept: the server could have rewritten its own. The console asks for the consistency proof from its size to the latest head\'s (GET /v1/audit/consistency) and checks it here against both roots (RFC 9162 §2.1.4.2).'),
    h('form', { id: 'consistency-form', onsubmit: async (event) => {
      event.preventDefault();
      result.replaceChildren(h('p', { class: 'muted' }, 'Checking…'));
      result.replaceChildren(verdict('consistency', await checked(() => consistent(text.value, head, headResult, publicKey))));
    } },
    await keptHeads(text),
    h('label', { for: 'earlier-head' }, 'An earlier signed tree head (JSON)'),
    h('small', { id: 'earlier-head-hint' }, `Checked against the latest head above, of ${head.tree_size} events.`),
    text,
    h('button', { type: 'submit' }, 'Check consistency')),
    result,
  ];
}

/** How far the view trails the log (GET /readyz), as the server says. */
async function projections(head) {
  let ready;
  try {
    ready = await getJson('/readyz');
  } catch (error) {
    // 503: not ready; the problem document still carries the figures when the store answered.
    if (!Number.isSafeInteger(error?.problem?.log_position)) return problemText(error);
    ready = error.problem;
  }
  const replica = ready.replica;
  return [
    facts([
      ['Ready', ready.status === 'ready' ? 'yes' : `no: ${ready.detail}`, { 'data-figure': 'ready' }],
      ['Log position', ready.log_position, { 'data-figure': 'log_position' }],
      ['View position', ready.view_position, { 'data-figure': 'view_position' }],
      ['View behind by', `${ready.lag_events} events, ${f.number(ready.lag_seconds)} s`, { 'data-figure': 'lag' }],
      ['View version', ready.view_version ?? 'in memory', { 'data-figure': 'view_version' }],
      replica ? ['Standby replay', `${replica.received_not_replayed_bytes} bytes received, not replayed; last replayed ${f.time(replica.last_replayed_at)}`, { 'data-figure': 'replica' }] : null,
      ['Signed tree head covers', `${head.tree_size} of ${ready.log_position} events`, { 'data-figure': 'tree_covers' }],
    ].filter(Boolean)),
    h('p', { class: 'muted' }, 'One view holds every projection (credit, shop scores, penalties, buyer histories, trade lists) and folds them together, ',
      'so its lag is each one\'s; the server reports no other. GET /readyz answers it, and /metrics as trustledger_projection_lag_events and _seconds. ',
      'Positions can have gaps, so the events behind are an upper bound.'),
  ];
}

export async function render(view, me, params) {
  view.append(h('h1', { tabindex: '-1' }, 'Audit'));
  if (!may(me, 'audit')) {
    view.append(h('p', { class: 'error', role: 'alert', 'data-refused': 'audit' },
      `A ${me.role} key may not audit the log: this page needs an auditor's or an administrator's key.`));
    return;
  }
  if (!webCrypto()) {
    view.append(h('p', { class: 'error', role: 'alert' },
      'This browser offers no WebCrypto here: open the console over https or on localhost to check signatures and proofs.'));
    return;
  }
  const headPart = section('Latest signed tree head', 'head');
  const inclusionPart = section('An event in the log', 'inclusion');
  const pastePart = section('Check a proof', 'paste');
  const consistencyPart = section('Consistency with an earlier head', 'consistency');
  const lagPart = section('Projections behind the log', 'lag');
  view.append(h('div', { class: 'grid' }, headPart.element, inclusionPart.element), pastePart.element,
    h('div', { class: 'grid' }, consistencyPart.element, lagPart.element));

  let head;
  let headResult;
  let publicKey;
  try {
    [head, publicKey] = await Promise.all([getJson('/v1/audit/tree-head'), getJson('/v1/audit/public-key')]);
    headResult = await checked(() => headSigned(head, publicKey));
    headPart.body.replaceChildren(
      facts([
        ['Events covered', head.tree_size, { 'data-figure': 'tree_size' }],
        ['Root hash', h('code', null, head.root_hash), { 'data-figure': 'root_hash' }],
        ['Signed at', f.time(head.timestamp), { 'data-figure': 'timestamp' }],
        ['Key', h('code', null, head.key_id), { 'data-figure': 'key_id' }],
      ]),
      verdict('head', headResult),
      h('p', { class: 'muted' }, 'Checked with the key the server names (GET /v1/audit/public-key); compare its id with the copy the operator gave you.'),
    );
    headPart.body.dataset.state = 'ready';
  } catch (error) {
    headPart.body.replaceChildren(problemText(error));
    headPart.body.dataset.state = 'error';
    inclusionPart.body.replaceChildren(h('p', { class: 'muted' }, 'No tree head to check against.'));
    pastePart.body.replaceChildren();
    consistencyPart.body.replaceChildren(h('p', { class: 'muted' }, 'No tree head to check against.'));
    lagPart.body.replaceChildren();
    return;
  }
  const lagLoad = fill(lagPart.body, () => projections(head));
  consistencyPart.body.replaceChildren(...await consistencyForm(head, headResult, publicKey));
  consistencyPart.body.dataset.state = 'ready';

  const position = Number.parseInt(params.get('position') ?? '1', 10);
  const proofText = h('textarea', { id: 'proof', name: 'proof', rows: 8, spellcheck: 'false', 'aria-describedby': 'proof-hint' });
  const pasteResult = h('div', { 'aria-live': 'polite' });
  pastePart.body.replaceChildren(h('form', { id: 'paste-form', onsubmit: async (event) => {
    event.preventDefault();
    pasteResult.replaceChildren(h('p', { class: 'muted' }, 'Checking…'));
    let proof;
    try {
      proof = JSON.parse(proofText.value);
    } catch {
      pasteResult.replaceChildren(verdict('pasted', { ok: false, why: 'the proof is not JSON' }));
      return;
    }
    pasteResult.replaceChildren(verdict('pasted', await checked(() => inclusion(proof, head, headResult))));
  } },
  h('label', { for: 'proof' }, 'Inclusion proof (JSON, as GET /v1/audit/inclusion answers it)'),
  h('small', { id: 'proof-hint' }, 'It is checked against the event in the log at its position and the signed head above.'),
  proofText,
  h('button', { type: 'submit' }, 'Check this proof')), pasteResult);
  pastePart.body.dataset.state = 'ready';

  const positionForm = h('form', { class: 'controls', id: 'position-form', onsubmit: (event) => {
    event.preventDefault();
    go(hashOf(['audit'], { position: event.currentTarget.elements.position.value }), 'position');
  } },
  h('div', { class: 'field' },
    h('label', { for: 'position' }, 'Log position'),
    h('input', { id: 'position', name: 'position', type: 'number', min: 1, step: 1, required: true, value: Number.isSafeInteger(position) ? position : 1 })),
  h('button', { type: 'submit' }, 'Check inclusion'));
  const outcome = h('div');
  inclusionPart.body.replaceChildren(positionForm, outcome);
  if (head.tree_size === 0) {
    outcome.replaceChildren(h('p', { class: 'muted' }, 'The log is empty.'));
  } else if (Number.isSafeInteger(position) && position >= 1) {
    try {
      const proof = await getJson('/v1/audit/inclusion', { position, tree_size: head.tree_size });
      proofText.value = JSON.stringify(proof, null, 2);
      outcome.replaceChildren(
        facts([
          ['Position', proof.position, { 'data-figure': 'position' }],
          ['Leaf', `${proof.leaf_index} of ${proof.tree_size}`, { 'data-figure': 'leaf' }],
          ['Proof', `${proof.proof.length} hashes`],
        ]),
        verdict('inclusion', await checked(() => inclusion(proof, head, headResult))));
    } catch (error) {
      outcome.replaceChildren(problemText(error));
    }
  }
  inclusionPart.body.dataset.state = 'ready';
  await lagLoad;
}
