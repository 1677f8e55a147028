// Logbook's in-browser check of one event (the event view, `/events/{id}`): the browser itself
// recomputes the event's leaf hash from its content (RFC 8785 canonical JSON, leaf version 2's
// salted commitments), walks the RFC 6962 inclusion proof up to the root, compares that root with
// the one the checkpoint signs, and checks the checkpoint's Ed25519 signature (C2SP signed note)
// with Web Crypto. It then says "Verified in your browser" or names the step that failed.
//
// The page hands over its data in data attributes of #browser-verification (never executed, so
// the strict CSP holds, and HTML-escaped by the template, so any event text is inert). Nothing
// here builds a URL, so the page works under any path prefix. The Rust implementation this
// mirrors is logbook_core::{leaf, personal_data, merkle, checkpoint}; the browser tests hold the
// two to the same answers on proofs, leaves and signatures produced by logbook-core.
//
// What this proves, and what it does not, is in the README ("Verified in your browser").

const encoder = new TextEncoder();

/** A step of the check failed; `message` says how, in words meant for the page. */
export class VerificationError extends Error {}

function fail(message) {
  throw new VerificationError(message);
}

function has(object, name) {
  return Object.prototype.hasOwnProperty.call(object, name);
}

function own(object, name) {
  return has(object, name) ? object[name] : undefined;
}

// Assignment would treat a member named "__proto__" as the prototype; event text may name one.
function setMember(object, name, value) {
  Object.defineProperty(object, name, { value, enumerable: true, writable: true, configurable: true });
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Lowercase hex of exactly `length` bytes (as Logbook writes hashes), or a VerificationError. */
export function hexToBytes(text, length, what) {
  if (typeof text !== "string" || text.length !== length * 2 || !/^[0-9a-f]*$/.test(text)) {
    fail(`${what} is not ${length} bytes of lowercase hex`);
  }
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 1) bytes[at] = parseInt(text.slice(at * 2, at * 2 + 2), 16);
  return bytes;
}

// Standard base64 with padding, as Rust's base64 STANDARD engine decodes it (atob alone would
// also take whitespace and missing padding).
function base64ToBytes(text, what) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    fail(`${what} is not base64`);
  }
  const bytes = Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
  // Rust refuses non-zero trailing bits, which atob would ignore: only the canonical text passes.
  if (btoa(String.fromCharCode(...bytes)) !== text) fail(`${what} is not canonical base64`);
  return bytes;
}

function concat(...parts) {
  const joined = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

function equalBytes(left, right) {
  return left.length === right.length && left.every((byte, at) => byte === right[at]);
}

function subtle() {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    fail("this page has no Web Crypto: browsers offer it only to pages served over HTTPS (or from localhost)");
  }
  return globalThis.crypto.subtle;
}

export async function sha256(...parts) {
  return new Uint8Array(await subtle().digest("SHA-256", concat(...parts)));
}

// ---- RFC 8785 (JCS) canonical JSON and the leaf (logbook_core::leaf, ::personal_data) ----

/**
 * The RFC 8785 canonical text of a parsed JSON value. JCS was written around ECMAScript's own
 * JSON.stringify: numbers in ECMAScript's shortest form, strings escaped exactly as it escapes
 * them; members are sorted by UTF-16 code units, which is how JavaScript compares strings.
 */
export function canonicalJson(value) {
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (isObject(value)) {
    return "{" + Object.keys(value).sort().map((name) => JSON.stringify(name) + ":" + canonicalJson(value[name])).join(",") + "}";
  }
  if (typeof value === "number" && !Number.isFinite(value)) fail("a number is not finite");
  return JSON.stringify(value);
}

// Top-level fields the leaf never commits to: derived flags and export-only fields.
const FIELDS_OUTSIDE_THE_LEAF = ["location", "new_ip", "new_network", "new_country", "leaf_hash", "inclusion_proof"];
// Leaf version 2's verification material: what checks personal fields, not content.
const VERIFICATION_MATERIAL_FIELDS = ["salt", "salts", "removed", "removed_commitments"];
const SALTED_LEAF_VERSION = 2;

function parseIpv4(text) {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part) && Number(part) <= 255)) {
    fail("ip is not an IP address");
  }
  return parts.map(Number);
}

function parseIpv6(text) {
  const halves = text.split("::");
  if (halves.length > 2) fail("ip is not an IP address");
  const groupsOf = (half) => {
    if (half === "") return [];
    const pieces = half.split(":");
    const groups = [];
    pieces.forEach((piece, at) => {
      if (at === pieces.length - 1 && piece.includes(".")) {
        const [a, b, c, d] = parseIpv4(piece);
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        groups.push(parseInt(piece, 16));
      } else {
        fail("ip is not an IP address");
      }
    });
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (halves.length === 2 ? head.length + tail.length > 7 : head.length !== 8) fail("ip is not an IP address");
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * The network leaf version 2 commits to beside an address: its /24 (IPv4) or /48 (IPv6) as CIDR
 * text, written as Rust writes it (`personal_data::ip_network_text`; an IPv4-mapped IPv6 address
 * counts as IPv4).
 */
export function ipNetworkText(ip) {
  if (typeof ip !== "string") fail("ip is not an IP address");
  let ipv4;
  if (ip.includes(":")) {
    const groups = parseIpv6(ip);
    if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
      ipv4 = [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff];
    } else {
      // The last five groups are zero, so the longest run of zeros to compress is the tail.
      const head = groups.slice(0, 3);
      while (head.length > 0 && head[head.length - 1] === 0) head.pop();
      return head.map((group) => group.toString(16)).join(":") + "::/48";
    }
  } else {
    ipv4 = parseIpv4(ip);
  }
  return `${ipv4[0]}.${ipv4[1]}.${ipv4[2]}.0/24`;
}

/**
 * What the event's own content says about its leaf (logbook_core::leaf::event_leaf_of_json_object):
 * `{ kind: "verifiable", leafBytes, removedFields }`, or `{ kind: "erased", removed }` for an event
 * whose personal data was removed before leaf version 2 (its content can no longer prove its leaf).
 */
export async function eventLeaf(eventText) {
  let event;
  try {
    event = JSON.parse(eventText);
  } catch {
    fail("the event's content is not JSON");
  }
  if (!isObject(event)) fail("the event's content is not a JSON object");
  if (!has(event, "leaf_version")) {
    const removed = own(event, "removed");
    if (Array.isArray(removed) && removed.length > 0) {
      return { kind: "erased", removed: removed.filter((name) => typeof name === "string") };
    }
    for (const name of FIELDS_OUTSIDE_THE_LEAF) delete event[name];
    return { kind: "verifiable", leafBytes: encoder.encode(canonicalJson(event)), removedFields: 0 };
  }
  const salted = await saltedLeafObject(event);
  return { kind: "verifiable", leafBytes: encoder.encode(canonicalJson(salted.leafObject)), removedFields: salted.removedFields };
}

/** `SHA-256(0x00 || leaf bytes)` (RFC 6962 §2.1). */
export async function leafHash(leafBytes) {
  return sha256(Uint8Array.of(0), leafBytes);
}

// Leaf version 2 (logbook_core::personal_data::salted_leaf_object): each personal field's value is
// replaced by SHA-256(field salt || JCS(value)); a removed field by the commitment kept for it.
async function saltedLeafObject(event) {
  if (event.leaf_version !== SALTED_LEAF_VERSION) fail(`unknown leaf_version ${JSON.stringify(event.leaf_version)}`);
  const salt = own(event, "salt");
  const salts = own(event, "salts");
  let fieldSalt;
  if (salt !== undefined && salts === undefined) {
    const eventSalt = typeof salt === "string" && /^[0-9a-f]{32}$/.test(salt) ? hexToBytes(salt, 16, "salt") : fail("salt is not 32 hex digits");
    fieldSalt = (name) => sha256(eventSalt, encoder.encode(name));
  } else if (salt === undefined && (salts === undefined || isObject(salts))) {
    fieldSalt = async (name) => {
      const text = salts === undefined ? undefined : own(salts, name);
      if (typeof text !== "string" || !/^[0-9a-f]{64}$/.test(text)) fail(`the salt of ${name} is missing`);
      return hexToBytes(text, 32, `the salt of ${name}`);
    };
  } else {
    fail("an event has either salt or salts, not both");
  }
  const removedList = has(event, "removed") ? event.removed : [];
  if (!Array.isArray(removedList)) fail("removed is not a list of names");
  if (!removedList.every((name) => typeof name === "string")) fail("removed holds something other than names");
  const removed = new Set(removedList);
  const commitments = has(event, "removed_commitments") ? event.removed_commitments : {};
  if (!isObject(commitments)) fail("removed_commitments is not an object");
  const committedNames = Object.keys(commitments);
  if (committedNames.length !== removed.size || committedNames.some((name) => !removed.has(name))) {
    fail("removed does not name exactly the fields removed_commitments keeps");
  }
  const keptCommitment = (name) => {
    if (!has(commitments, name)) return undefined;
    const text = commitments[name];
    if (typeof text !== "string" || !/^[0-9a-f]{64}$/.test(text)) fail(`the commitment kept for ${name} is not 64 hex digits`);
    return text;
  };
  // `value` is undefined for a field without a value.
  const committed = async (name, value) => {
    const kept = keptCommitment(name);
    if (kept !== undefined) {
      if (value !== undefined && value !== null) fail(`${name} is marked removed but still has a value`);
      return kept;
    }
    if (value === undefined) return undefined;
    return bytesToHex(await sha256(await fieldSalt(name), encoder.encode(canonicalJson(value))));
  };
  const present = (value) => (value === null ? undefined : value);

  const leafObject = {};
  for (const name of Object.keys(event)) {
    if (!FIELDS_OUTSIDE_THE_LEAF.includes(name) && !VERIFICATION_MATERIAL_FIELDS.includes(name) && name !== "ip_network") {
      setMember(leafObject, name, event[name]);
    }
  }
  for (const name of ["ip", "user_agent"]) {
    const leafValue = await committed(name, present(own(event, name)));
    if (leafValue === undefined) delete leafObject[name];
    else setMember(leafObject, name, leafValue);
  }
  let containersPresent = 0;
  if (has(leafObject, "actor")) {
    if (!isObject(leafObject.actor)) fail("actor is not an object");
    const actor = leafObject.actor;
    if (has(commitments, "actor.name")) containersPresent += 1;
    const leafName = await committed("actor.name", present(own(actor, "name")));
    if (leafName === undefined) delete actor.name;
    else setMember(actor, "name", leafName);
  }
  if (has(leafObject, "metadata")) {
    if (!isObject(leafObject.metadata)) fail("metadata is not an object");
    const members = leafObject.metadata;
    const keys = Object.keys(members);
    for (const name of committedNames) {
      if (name.startsWith("metadata.") && !has(members, name.slice("metadata.".length))) keys.push(name.slice("metadata.".length));
    }
    for (const key of keys) {
      const memberName = "metadata." + key;
      const kept = has(commitments, memberName);
      if (kept) containersPresent += 1;
      // A member sent as null is committed as null; only `removed` tells a removed one apart.
      const value = kept ? present(own(members, key)) : own(members, key);
      setMember(members, key, await committed(memberName, value));
    }
  }
  // The address's network sits beside it in the leaf, spelled out or derived from the address.
  const ip = present(own(event, "ip"));
  let network = present(own(event, "ip_network"));
  if (network === undefined && ip !== undefined) network = ipNetworkText(ip);
  const leafNetwork = await committed("ip_network", network);
  if (leafNetwork !== undefined) setMember(leafObject, "ip_network", leafNetwork);
  const topLevel = ["ip", "user_agent", "ip_network"].filter((name) => has(commitments, name)).length;
  if (topLevel + containersPresent !== committedNames.length) fail("removed_commitments keeps a field the event does not have");
  return { leafObject, removedFields: committedNames.length };
}

// ---- RFC 6962 / RFC 9162 inclusion proofs (logbook_core::merkle::verify_inclusion) ----

async function hashChildren(left, right) {
  return sha256(Uint8Array.of(1), left, right);
}

/**
 * The root an inclusion proof leads to from `leafHashBytes` at `index` in a tree of `treeSize`
 * leaves (RFC 9162 §2.1.3.2), or a VerificationError when the proof has the wrong shape. Indices
 * are BigInts: JavaScript's bit operators work on 32 bits only.
 */
export async function rootFromInclusionProof(leafHashBytes, index, treeSize, proof) {
  const leafIndex = BigInt(index);
  const size = BigInt(treeSize);
  if (leafIndex >= size) fail(`leaf index ${leafIndex} is not below tree size ${size}`);
  let fnode = leafIndex;
  let snode = size - 1n;
  let computed = leafHashBytes;
  for (const sibling of proof) {
    if (snode === 0n) fail("the proof has the wrong number of hashes");
    if ((fnode & 1n) === 1n || fnode === snode) {
      computed = await hashChildren(sibling, computed);
      while ((fnode & 1n) === 0n && fnode !== 0n) {
        fnode >>= 1n;
        snode >>= 1n;
      }
    } else {
      computed = await hashChildren(computed, sibling);
    }
    fnode >>= 1n;
    snode >>= 1n;
  }
  if (snode !== 0n) fail("the proof has the wrong number of hashes");
  return computed;
}

// ---- Checkpoints: C2SP signed note + tlog-checkpoint, Ed25519 (logbook_core::checkpoint) ----

const SIGNATURE_LINE_PREFIX = "\u2014 ";
const MAX_SIGNATURE_LINES = 100;

function isValidName(name) {
  // Rust: non-empty, no whitespace, control characters or '+'.
  return name !== "" && !/[\s\p{Cc}+]/u.test(name);
}

/**
 * The verifier key as `logbook checkpoint-key` prints it: `<name>+<key ID hex>+<base64(0x01 ||
 * public key)>`, with the key ID checked against the key.
 */
export async function parseVerifierKey(text) {
  const trimmed = String(text ?? "").trim();
  const first = trimmed.indexOf("+");
  const second = first < 0 ? -1 : trimmed.indexOf("+", first + 1);
  if (second < 0) fail("the checkpoint key is not <name>+<id>+<key>");
  const name = trimmed.slice(0, first);
  const idHex = trimmed.slice(first + 1, second);
  if (!isValidName(name)) fail("the checkpoint key's name is empty or has spaces");
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) fail("the checkpoint key's ID is not 8 hex digits");
  const typed = base64ToBytes(trimmed.slice(second + 1), "the checkpoint key");
  if (typed.length !== 33 || typed[0] !== 1) fail("the checkpoint key is not an Ed25519 key (type 0x01, 32 bytes)");
  const publicKey = typed.slice(1);
  const id = (await sha256(encoder.encode(name), Uint8Array.of(0x0a, 0x01), publicKey)).slice(0, 4);
  if (bytesToHex(id) !== idHex.toLowerCase()) fail("the checkpoint key's ID does not match the key");
  return { name, id, label: `${name}+${bytesToHex(id)}`, publicKey, text: trimmed };
}

/** Splits a signed note into its text (what is signed) and its signature lines, and checks its shape. */
export function splitSignedNote(note) {
  if (typeof note !== "string") fail("the checkpoint is missing");
  // Control characters other than newline: Rust's is_ascii_control (U+0000..U+001F and U+007F).
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(note)) fail("the checkpoint holds control characters other than newline");
  if (!note.endsWith("\n")) fail("the checkpoint does not end with a newline");
  const separator = note.lastIndexOf("\n\n");
  if (separator < 0) fail("the checkpoint has no blank line before its signatures");
  const signatures = note.slice(separator + 2);
  const lines = signatures === "" ? [] : signatures.slice(0, -1).split("\n");
  return { text: note.slice(0, separator + 1), lines };
}

/**
 * Checks the signed note's signature by `key` (parseVerifierKey) with Web Crypto's Ed25519, as
 * CheckpointVerifier::verify_note does: signatures by other keys are skipped; one that claims
 * this key and does not verify is an error.
 */
export async function verifySignedNote(note, key) {
  const { text, lines } = splitSignedNote(note);
  let verified = false;
  for (const [count, line] of lines.entries()) {
    if (count >= MAX_SIGNATURE_LINES) fail("the checkpoint has too many signature lines");
    if (!line.startsWith(SIGNATURE_LINE_PREFIX)) fail("a signature line of the checkpoint does not start with an em dash and a space");
    const rest = line.slice(SIGNATURE_LINE_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) fail("a signature line of the checkpoint is not a name and a signature");
    const name = rest.slice(0, space);
    if (!isValidName(name)) fail("a signature line of the checkpoint has an invalid key name");
    const signatureBytes = base64ToBytes(rest.slice(space + 1), "a signature of the checkpoint");
    if (signatureBytes.length < 4) fail("a signature of the checkpoint is shorter than its key ID");
    if (name !== key.name || !equalBytes(signatureBytes.slice(0, 4), key.id)) continue;
    if (signatureBytes.length !== 68 || !(await ed25519Verify(key.publicKey, signatureBytes.slice(4), encoder.encode(text)))) {
      fail(`the checkpoint's signature by key ${key.label} does not verify`);
    }
    verified = true;
  }
  if (lines.length === 0) fail("the checkpoint has no signature");
  if (!verified) fail(`the checkpoint has no signature by key ${key.label}`);
  return text;
}

async function ed25519Verify(publicKey, signature, message) {
  let cryptoKey;
  try {
    cryptoKey = await subtle().importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    if (error instanceof VerificationError) throw error;
    if (error && error.name === "NotSupportedError") {
      fail("this browser's Web Crypto cannot check Ed25519 signatures (Chrome 137, Firefox 129 and Safari 17 can)");
    }
    fail("the checkpoint key is not a valid Ed25519 public key");
  }
  return subtle().verify({ name: "Ed25519" }, cryptoKey, signature, message);
}

/** The body of a checkpoint note's text (tlog-checkpoint): origin, tree size, root hash. */
export function parseCheckpointBody(text) {
  const lines = text.split("\n");
  lines.pop(); // the text ends with a newline
  const [origin, sizeText, rootText] = lines;
  if (origin === undefined) fail("the checkpoint has no origin");
  if (!isValidName(origin)) fail("the checkpoint's origin is invalid");
  if (sizeText === undefined) fail("the checkpoint has no tree size");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || BigInt(sizeText) >= 2n ** 64n) fail("the checkpoint's tree size is not a decimal without leading zeros");
  if (rootText === undefined) fail("the checkpoint has no root hash");
  const rootHash = base64ToBytes(rootText, "the checkpoint's root hash");
  if (rootHash.length !== 32) fail("the checkpoint's root hash is not 32 bytes");
  if (lines.slice(3).some((line) => line === "")) fail("the checkpoint has an empty extension line");
  const slash = origin.lastIndexOf("/");
  return { origin, account: slash < 0 ? undefined : origin.slice(slash + 1), treeSize: BigInt(sizeText), rootHash };
}

// ---- The event view ----

const PINNED_KEY_STORAGE = "logbook.pinned-checkpoint-key";

function pinnedKey() {
  try {
    return globalThis.localStorage ? localStorage.getItem(PINNED_KEY_STORAGE) : null;
  } catch {
    return null; // storage refused (a sandboxed frame, a privacy setting): nothing is pinned
  }
}

// The signing time in the reader's local time, as app.js shows times, or as given.
function localTime(rfc3339) {
  const at = new Date(rfc3339);
  if (Number.isNaN(at.getTime())) return rfc3339;
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" }).format(at);
}

function short(hex) {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : hex;
}

async function step(steps, run) {
  try {
    steps.push(await run());
  } catch (error) {
    const message = error instanceof VerificationError ? error.message : `the check stopped: ${error}`;
    steps.push({ outcome: "failed", text: message.charAt(0).toUpperCase() + message.slice(1) + "." });
  }
}

/**
 * Runs every step of the check on the data of `section` (#browser-verification) and returns
 * `{ outcome: "verified" | "failed" | "unavailable", headline, steps: [{ outcome, text }] }`.
 */
export async function checkEvent(data) {
  const steps = [];
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    return {
      outcome: "unavailable",
      headline: "Not checked in your browser: browsers offer Web Crypto only to pages served over HTTPS (or from localhost). Check this event with `logbook verify` instead.",
      steps,
    };
  }
  let statedLeaf;
  let statedRoot;
  let eventSeq;
  let eventAccount;
  let leafFromServer = false;
  let key;
  let checkpointBody;

  // 1. The event's content hashes to its leaf hash.
  await step(steps, async () => {
    statedLeaf = hexToBytes(data.leafHash, 32, "the page's leaf hash");
    try {
      const parsed = JSON.parse(data.event);
      eventSeq = parsed.seq;
      eventAccount = parsed.account;
    } catch {
      // eventLeaf names the problem.
    }
    const leaf = await eventLeaf(data.event);
    if (leaf.kind === "erased") {
      leafFromServer = true;
      return {
        outcome: "note",
        text: `Leaf hash ${short(data.leafHash)} taken from the server: this event's personal data (${leaf.removed.join(", ")}) was removed before leaf version 2, so its content can no longer be checked against its leaf.`,
      };
    }
    const computed = bytesToHex(await leafHash(leaf.leafBytes));
    if (computed !== data.leafHash) {
      fail(`the event's content does not hash to its leaf hash: it hashes to ${short(computed)}, the page states ${short(data.leafHash)}`);
    }
    const removedNote = leaf.removedFields > 0 ? ` (${leaf.removedFields} removed personal fields stand in through the commitments kept for them)` : "";
    return { outcome: "ok", text: `The event's content hashes to its leaf hash ${short(computed)}${removedNote}.` };
  });

  // 2. The inclusion proof leads from the leaf to the root.
  await step(steps, async () => {
    statedRoot = hexToBytes(data.rootHash, 32, "the page's root hash");
    if (!/^(0|[1-9][0-9]*)$/.test(data.leafIndex ?? "") || !/^[1-9][0-9]*$/.test(data.treeSize ?? "")) fail("the proof's leaf index or tree size is not a number");
    if (eventSeq !== undefined && String(eventSeq) !== data.leafIndex) fail(`the proof is for leaf ${data.leafIndex}, but this event is seq ${eventSeq}`);
    const path = (data.auditPath ?? "").split(" ").filter((hash) => hash !== "");
    const proof = path.map((hash, at) => hexToBytes(hash, 32, `hash ${at + 1} of the inclusion proof`));
    if (statedLeaf === undefined) fail("there is no leaf hash to start the proof from");
    const root = bytesToHex(await rootFromInclusionProof(statedLeaf, data.leafIndex, data.treeSize, proof));
    if (root !== data.rootHash) fail(`the inclusion proof does not lead to the root: it leads to ${short(root)}, the page states ${short(data.rootHash)}`);
    return { outcome: "ok", text: `Event ${data.leafIndex} is in the tree of size ${data.treeSize}: its ${proof.length} proof hashes lead to root ${short(root)}.` };
  });

  // 3. That root is the one the checkpoint signs, for this tree size and this account.
  await step(steps, async () => {
    checkpointBody = parseCheckpointBody(splitSignedNote(data.checkpoint).text);
    if (statedRoot === undefined) fail("there is no root hash to compare with the checkpoint");
    if (!equalBytes(checkpointBody.rootHash, statedRoot)) fail(`the checkpoint signs root ${short(bytesToHex(checkpointBody.rootHash))}, not the root ${short(data.rootHash)} the proof leads to`);
    if (String(checkpointBody.treeSize) !== data.treeSize) fail(`the checkpoint is of a tree of size ${checkpointBody.treeSize}, but the proof is for size ${data.treeSize}`);
    if (eventAccount !== undefined && checkpointBody.account !== eventAccount) fail(`the checkpoint is of the log ${checkpointBody.origin}, not of this event's account ${eventAccount}`);
    return { outcome: "ok", text: `The checkpoint of ${checkpointBody.origin} signs this root for ${checkpointBody.treeSize} events.` };
  });

  // 4. The checkpoint's signature verifies with the checkpoint key.
  await step(steps, async () => {
    if (!data.verifierKey) fail("this server publishes no checkpoint key on the page, so the signature cannot be checked here; use `logbook verify`");
    key = await parseVerifierKey(data.verifierKey);
    await verifySignedNote(data.checkpoint, key);
    return { outcome: "ok", text: `The checkpoint's Ed25519 signature verifies with key ${key.label}.` };
  });

  // 5. The key is the one this person pinned, when they pinned one.
  const pinned = pinnedKey();
  if (key !== undefined) {
    if (pinned === null) {
      steps.push({ outcome: "note", text: `Compare the whole key ${key.label} shown below (a key ID alone is only 4 bytes) with the key your Logbook operator publishes (\`logbook checkpoint-key\`), then pin it: this browser will then warn you when a page shows another key.` });
    } else if (pinned.trim() === key.text) {
      steps.push({ outcome: "ok", text: `Key ${key.label} is the key you pinned in this browser.` });
    } else {
      const pinnedLabel = pinned.split("+").slice(0, 2).join("+");
      steps.push({ outcome: "failed", text: `The page's checkpoint key ${key.label} is not the key you pinned in this browser (${pinnedLabel}).` });
    }
  }

  const failed = steps.find((each) => each.outcome === "failed");
  if (failed) return { outcome: "failed", headline: `Not verified in your browser: ${failed.text}`, steps, key };
  const signedAt = data.signedAt ? ` at ${localTime(data.signedAt)}` : "";
  const fromServer = leafFromServer ? " The leaf hash itself was taken from the server (see below)." : "";
  return {
    outcome: "verified",
    headline: `Verified in your browser: event ${data.leafIndex} in the tree of size ${data.treeSize}, checkpoint signed by key ${key.label}${signedAt}.${fromServer}`,
    steps,
    key,
  };
}

// Text from the page's data (account, origin, key and field names) is shown with the characters
// app.js's visible() escapes shown as escapes too: controls, bidi and zero-width characters.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\u2028\u2029\ufeff]/g;

function visible(text) {
  return text.replace(UNSAFE, (character) => "\\u{" + character.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "}");
}

function render(section, result) {
  const status = section.querySelector("#browser-verification-status");
  const list = section.querySelector("#browser-verification-steps");
  const pin = section.querySelector("#browser-verification-pin");
  section.dataset.outcome = result.outcome;
  status.textContent = visible(result.headline);
  status.className = "verification-status " + result.outcome;
  list.replaceChildren(
    ...result.steps.map((each) => {
      const item = document.createElement("li");
      item.className = each.outcome;
      item.textContent = (each.outcome === "ok" ? "✓ " : each.outcome === "failed" ? "✗ " : "• ") + visible(each.text);
      return item;
    }),
  );
  // What was checked is the event object the page carries; the fields above are rendered by the
  // server from the same object, so the reader can compare them with exactly what verified.
  const checked = section.querySelector("#browser-verification-checked");
  const content = section.querySelector("#browser-verification-content");
  if (checked && content) {
    let pretty = "";
    try {
      pretty = JSON.stringify(JSON.parse(section.dataset.event), null, 2);
    } catch {
      // Content that is not JSON has failed step 1 already; there is nothing to show.
    }
    content.textContent = pretty.split("\n").map(visible).join("\n");
    checked.hidden = pretty === "";
  }
  if (pin) {
    const pinned = pinnedKey();
    pin.hidden = result.key === undefined && pinned === null;
    pin.textContent = pinned === null ? "Pin this key in this browser" : "Unpin the key";
  }
}

/** Checks the event of the page's #browser-verification section and shows the outcome there. */
export async function verifyEventPage(section) {
  const result = await checkEvent({ ...section.dataset });
  render(section, result);
  const pin = section.querySelector("#browser-verification-pin");
  if (pin && !pin.dataset.wired) {
    pin.dataset.wired = "true";
    pin.addEventListener("click", async () => {
      const pinned = pinnedKey();
      try {
        if (pinned === null) {
          const key = await parseVerifierKey(section.dataset.verifierKey);
          localStorage.setItem(PINNED_KEY_STORAGE, key.text);
        } else {
          localStorage.removeItem(PINNED_KEY_STORAGE);
        }
      } catch {
        // A key that does not parse cannot be pinned; storage may be refused: the check says so.
      }
      await verifyEventPage(section);
    });
  }
  return result;
}

if (typeof document !== "undefined") {
  const section = document.getElementById("browser-verification");
  if (section) verifyEventPage(section);
}
