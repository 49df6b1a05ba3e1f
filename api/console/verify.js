// Checking the log in the browser, as docs/audit.md describes it: RFC 9162
// leaf and node hashes (SHA-256), inclusion and consistency proofs, and the
// Ed25519 signature over a tree head, with nothing but WebCrypto.

const encoder = new TextEncoder();
const HEAD_TAG = encoder.encode('trustledger-tree-head-v1\0');
const BODY_MARK = encoder.encode(',"body":');
const CLOSE_BRACE = 0x7d;
const NEWLINE = 0x0a;

export function webCrypto() {
  return globalThis.crypto?.subtle ?? null;
}

export function fromBase64(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function u64(value) {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value));
  return bytes;
}

function u32(value) {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

export function equal(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await webCrypto().digest('SHA-256', bytes));
}

export function leafHash(canonical) {
  return sha256(concat(Uint8Array.of(0), canonical));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function indexOf(bytes, mark) {
  outer: for (let i = 0; i + mark.length <= bytes.length; i++) {
    for (let j = 0; j < mark.length; j++) if (bytes[i + j] !== mark[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * One line of GET /v1/log, as bytes: its fields, and its body's bytes cut
 * from the line itself (never re-encoded: they are hashed as stored).
 */
export function readLogLine(line) {
  let end = line.length;
  while (end > 0 && line[end - 1] === NEWLINE) end--;
  const mark = indexOf(line, BODY_MARK);
  let close = end - 1;
  while (close >= 0 && line[close] !== CLOSE_BRACE) close--;
  if (mark < 0 || close <= mark) throw new Error('not a line of the log');
  const event = JSON.parse(new TextDecoder().decode(line.subarray(0, end)));
  return { event, body: line.slice(mark + BODY_MARK.length, close) };
}

function uuidBytes(uuid) {
  const hex = uuid.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  return Uint8Array.from(hex.match(/../g), (pair) => Number.parseInt(pair, 16));
}

/** An event's canonical bytes (docs/audit.md, section 2). */
export function canonicalBytes(event, body) {
  const topic = encoder.encode(event.topic);
  return concat(
    Uint8Array.of(1), u64(event.position), uuidBytes(event.originator_id),
    u64(event.originator_version), u32(topic.length), topic, u32(body.length), body,
  );
}

/** RFC 9162 §2.1.3.2: does ``proof`` lead from the leaf to ``root``? */
export async function inclusionHolds(leafIndex, treeSize, leaf, proof, root) {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        do {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        } while (fn % 2 === 0 && fn !== 0);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** A time the API sends (RFC 3339, UTC) as microseconds since the epoch. */
export function microseconds(time) {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(time);
  if (!match) throw new Error(`not a time the API sends: ${time}`);
  const seconds = BigInt(Date.parse(`${match[1]}Z`)) / 1000n;
  return seconds * 1_000_000n + BigInt((match[2] ?? '').padEnd(6, '0'));
}

/** The 73 bytes a tree head's signature covers (docs/audit.md, section 4). */
export function signedMessage(head) {
  return concat(HEAD_TAG, u64(head.tree_size), u64(microseconds(head.timestamp)), fromBase64(head.root_hash));
}

function pemToDer(pem) {
  const text = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  return fromBase64(text);
}

async function keyId(der) {
  const raw = der.slice(der.length - 32);
  const digest = await sha256(raw);
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Whether ``head`` is signed by ``publicKey`` (GET /v1/audit/public-key):
 * {ok, why}, ``why`` saying what failed.
 */
export async function headSigned(head, publicKey) {
  const der = pemToDer(publicKey.public_key_pem);
  if ((await keyId(der)) !== publicKey.key_id) return { ok: false, why: 'the key\'s id does not match the key' };
  if (head.key_id !== publicKey.key_id) return { ok: false, why: `signed by key ${head.key_id}, not ${publicKey.key_id}` };
  const key = await webCrypto().importKey('spki', der, { name: 'Ed25519' }, false, ['verify']);
  const ok = await webCrypto().verify({ name: 'Ed25519' }, key, fromBase64(head.signature), signedMessage(head));
  return { ok, why: ok ? 'the signature holds' : 'the signature does not match the head' };
}

function isPowerOfTwo(n) {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * RFC 9162 §2.1.4.2 (docs/audit.md, section 6): does ``proof`` show that the
 * tree of ``second`` leaves with root ``secondRoot`` extends, unchanged, the
 * tree of ``first`` leaves with root ``firstRoot``?
 */
export async function consistencyHolds(first, second, proof, firstRoot, secondRoot) {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return false;
  if (first === second) return proof.length === 0 && equal(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0;
  // A first tree that is a whole subtree is its own first node of the path.
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : proof;
  if (path.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  // The right edge both trees share needs no hashing.
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, firstRoot) && equal(sr, secondRoot);
}
