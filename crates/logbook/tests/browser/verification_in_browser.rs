//! "Verified in your browser" (issue 15, item 5): the event view checks the event's leaf hash,
//! inclusion proof and signed checkpoint in Chromium itself (`assets/verify.js`), says so, and
//! names the step that fails when what the page states was tampered with; and the script reaches
//! the same answers as `logbook-core` on reference proofs, real exported events and signatures.

use std::collections::HashMap;

use logbook_core::checkpoint::CheckpointSigner;
use logbook_core::merkle::{self, CompactRange, Hash, NodeId};

use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Opens the event's page until it carries the in-browser check (the checkpointer signs within
/// its interval), waits for the check to finish and returns what it shows.
async fn open_checked_event(browser: &Browser, site: &Site, id: &str) -> Value {
    reload_until(
        browser,
        site,
        &format!("/events/{id}"),
        "the in-browser check",
        "#browser-verification",
    )
    .await;
    browser
        .wait_for(
            "the in-browser check to finish",
            "const section = document.getElementById('browser-verification');
             if (!section || !section.dataset.outcome) return null;
             return {
               outcome: section.dataset.outcome,
               status: document.getElementById('browser-verification-status').textContent,
               steps: [...document.querySelectorAll('#browser-verification-steps li')].map((item) => ({ outcome: item.className, text: item.textContent })),
             };",
            WAIT,
        )
        .await
}

/// The public key as the operator publishes it: `logbook checkpoint-key` on the server's data dir.
fn published_checkpoint_key(site: &Site) -> String {
    let output = site.run(&["checkpoint-key"], "");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_opened_after_its_checkpoint_is_signed_says_verified_in_your_browser() {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    let published_key = published_checkpoint_key(&site);
    site.serve();
    let ids = site.send(&key, sample_events()).await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;

    let (name, rest) = published_key.split_once('+').unwrap();
    let label = format!("{name}+{}", rest.split_once('+').unwrap().0);
    // Every sample event: IPv4 and IPv6 addresses, targets, changes and nested metadata.
    for (seq, id) in ids.iter().enumerate() {
        let shown = open_checked_event(browser, &site, id).await;
        assert_eq!(shown["outcome"], "verified", "event {seq}: {shown:#}");
        let status = shown["status"].as_str().unwrap();
        assert!(
            status.starts_with(&format!(
                "Verified in your browser: event {seq} in the tree of size "
            )),
            "{status}"
        );
        assert!(
            status.contains(&format!(", checkpoint signed by key {label} at ")),
            "the page names the key `logbook checkpoint-key` prints: {status}"
        );
        let steps = shown["steps"].as_array().unwrap();
        let texts: Vec<&str> = steps
            .iter()
            .map(|step| step["text"].as_str().unwrap())
            .collect();
        assert!(
            texts[0].starts_with("✓ The event's content hashes to its leaf hash "),
            "{texts:#?}"
        );
        assert!(
            texts[1].starts_with(&format!("✓ Event {seq} is in the tree of size ")),
            "{texts:#?}"
        );
        assert!(
            texts[2].starts_with("✓ The checkpoint of ") && texts[2].contains("/acme signs"),
            "{texts:#?}"
        );
        assert_eq!(
            texts[3],
            format!("✓ The checkpoint's Ed25519 signature verifies with key {label}.")
        );
        assert!(
            texts[4].contains("logbook checkpoint-key") && texts[4].starts_with("• "),
            "{texts:#?}"
        );
    }

    // What was checked is on the page too: the stored event object, shown as inert text.
    let checked = browser
        .execute(
            "return { hidden: document.getElementById('browser-verification-checked').hidden,
                      text: document.getElementById('browser-verification-content').textContent };",
            json!([]),
        )
        .await;
    assert_eq!(checked["hidden"], false, "{checked}");
    let checked_event: Value = serde_json::from_str(checked["text"].as_str().unwrap()).unwrap();
    // The loop ended on the last sample event.
    assert_eq!(checked_event["id"], ids[3].as_str(), "{checked}");
    assert_eq!(checked_event["message"], "Bob failed to sign in");
    assert_eq!(checked_event["leaf_version"], 2);

    // The whole key is on the page to compare, not only its 4-byte ID.
    let shown_key = browser
        .execute(
            "return document.getElementById('browser-verification-key').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(shown_key, published_key);

    // Pinning the key (after comparing it) is remembered by this browser and said on the page.
    browser.click("#browser-verification-pin").await;
    let pinned = browser
        .wait_for(
            "the pinned key to be checked",
            "const steps = [...document.querySelectorAll('#browser-verification-steps li')];
             return steps.length === 5 && steps[4].className === 'ok' ? steps[4].textContent : null;",
            WAIT,
        )
        .await;
    assert_eq!(
        pinned,
        format!("✓ Key {label} is the key you pinned in this browser.")
    );
    let stored = browser
        .execute(
            "return localStorage.getItem('logbook.pinned-checkpoint-key');",
            json!([]),
        )
        .await;
    assert_eq!(stored, published_key);
    let reopened = open_checked_event(browser, &site, &ids[0]).await;
    assert_eq!(reopened["outcome"], "verified", "{reopened:#}");
    assert_eq!(
        reopened["steps"][4]["text"],
        format!("✓ Key {label} is the key you pinned in this browser.")
    );

    let violations = browser
        .execute("return window.__cspViolations || [];", json!([]))
        .await;
    assert_eq!(violations, json!([]), "the check keeps the page's CSP");

    // The outcome, at desktop and phone width, without sideways scrolling.
    let directory = screenshot_directory();
    std::fs::create_dir_all(&directory).unwrap();
    for width in [1280, 360] {
        browser
            .devtools(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600 }),
            )
            .await;
        open_checked_event(browser, &site, &ids[2]).await;
        browser
            .execute(
                "document.getElementById('browser-verification').scrollIntoView();",
                json!([]),
            )
            .await;
        save_screenshot(
            browser,
            &directory,
            "event-verified-in-browser",
            "light",
            width,
        )
        .await;
    }
    chromium.stop().await;
}

/// Changes one data attribute of the check as `change` (a JavaScript function of the old value)
/// says, runs the check again through the page's own module, and returns what the page shows.
async fn check_with_tampered(browser: &Browser, attribute: &str, change: &str) -> Value {
    browser
        .execute(
            &format!(
                "return (async () => {{
                 const section = document.getElementById('browser-verification');
                 const change = {change};
                 section.dataset[arguments[0]] = change(section.dataset[arguments[0]]);
                 const module = await import(document.getElementById('browser-verification').dataset.verifierScript);
                 const result = await module.verifyEventPage(section);
                 return {{
                   outcome: section.dataset.outcome,
                   status: document.getElementById('browser-verification-status').textContent,
                   headline: result.headline,
                 }};
                 }})();"
            ),
            json!([attribute]),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_what_the_page_states_fails_the_check_at_the_step_that_was_changed() {
    let Some(tools) = browser_tools() else { return };
    let (site, _key, ids) = acme_site().await;
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    let event_id = &ids[2];
    let untouched = open_checked_event(browser, &site, event_id).await;
    assert_eq!(untouched["outcome"], "verified", "{untouched:#}");
    let key_text = browser
        .execute(
            "return document.getElementById('browser-verification').dataset.verifierKey;",
            json!([]),
        )
        .await;
    let key_text = key_text.as_str().unwrap().to_owned();
    let key_name = key_text.split('+').next().unwrap().to_owned();
    // Another valid key under the same name: the server could show it beside its own checkpoint.
    let other_key = CheckpointSigner::generate([42; 32], &key_name)
        .unwrap()
        .verifier()
        .to_key_text();
    let other_label = other_key
        .splitn(3, '+')
        .take(2)
        .collect::<Vec<_>>()
        .join("+");

    let cases: Vec<(&str, String, String)> = vec![
        (
            "event",
            "(event) => event.replace('Opened port 22', 'Opened port 23')".into(),
            "Not verified in your browser: The event's content does not hash to its leaf hash: it hashes to ".into(),
        ),
        (
            "event",
            "(event) => event.replace('\"seq\":2', '\"seq\":1')".into(),
            "Not verified in your browser: The event's content does not hash to its leaf hash".into(),
        ),
        (
            "leafHash",
            "(hash) => (hash[0] === '0' ? '1' : '0') + hash.slice(1)".into(),
            "Not verified in your browser: The event's content does not hash to its leaf hash".into(),
        ),
        (
            "auditPath",
            "(path) => (path[0] === '0' ? '1' : '0') + path.slice(1)".into(),
            "Not verified in your browser: The inclusion proof does not lead to the root: it leads to ".into(),
        ),
        (
            "auditPath",
            "(path) => path.split(' ').slice(0, -1).join(' ')".into(),
            "Not verified in your browser: The proof has the wrong number of hashes.".into(),
        ),
        (
            "rootHash",
            "(hash) => (hash[0] === '0' ? '1' : '0') + hash.slice(1)".into(),
            "Not verified in your browser: The inclusion proof does not lead to the root".into(),
        ),
        (
            "checkpoint",
            "(note) => { const lines = note.split('\\n'); lines[1] = String(Number(lines[1]) + 1); return lines.join('\\n'); }".into(),
            "Not verified in your browser: The checkpoint is of a tree of size ".into(),
        ),
        (
            "checkpoint",
            // A different character inside the Ed25519 signature, after the 4-byte key ID.
            "(note) => { const at = note.lastIndexOf(' ') + 40; return note.slice(0, at) + (note[at] === 'A' ? 'B' : 'A') + note.slice(at + 1); }".into(),
            format!("Not verified in your browser: The checkpoint's signature by key {} does not verify.", key_text.splitn(3, '+').take(2).collect::<Vec<_>>().join("+")),
        ),
        (
            "verifierKey",
            format!("() => {}", serde_json::to_string(&other_key).unwrap()),
            format!("Not verified in your browser: The checkpoint has no signature by key {other_label}."),
        ),
    ];
    for (attribute, change, expected) in &cases {
        browser
            .goto(&site.url(&format!("/events/{event_id}")))
            .await;
        let shown = check_with_tampered(browser, attribute, change).await;
        assert_eq!(
            shown["outcome"], "failed",
            "{attribute} {change}: {shown:#}"
        );
        let status = shown["status"].as_str().unwrap();
        assert!(
            status.starts_with(expected.as_str()),
            "{attribute} {change}:\n  shows {status}\n  wanted {expected}"
        );
        assert_eq!(shown["headline"], shown["status"]);
    }

    // A key pinned in this browser that differs from the page's fails the check too.
    browser
        .goto(&site.url(&format!("/events/{event_id}")))
        .await;
    browser
        .execute(
            "localStorage.setItem('logbook.pinned-checkpoint-key', arguments[0]);",
            json!([other_key]),
        )
        .await;
    let shown = check_with_tampered(browser, "event", "(event) => event").await;
    assert_eq!(shown["outcome"], "failed", "{shown:#}");
    let label = key_text
        .splitn(3, '+')
        .take(2)
        .collect::<Vec<_>>()
        .join("+");
    assert_eq!(
        shown["status"],
        format!(
            "Not verified in your browser: The page's checkpoint key {label} is not the key you pinned in this browser ({other_label})."
        )
    );
    // The same data, untouched, verifies again once the pin is the page's key.
    browser
        .execute(
            "localStorage.setItem('logbook.pinned-checkpoint-key', arguments[0]);",
            json!([key_text]),
        )
        .await;
    let shown = check_with_tampered(browser, "event", "(event) => event").await;
    assert_eq!(shown["outcome"], "verified", "{shown:#}");
    chromium.stop().await;
}

/// The leaves of the Certificate Transparency reference tree (RFC 6962 test data) and its
/// published root for all eight.
const REFERENCE_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const REFERENCE_ROOT_OF_EIGHT: &str =
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";

fn bytes_of_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// Every inclusion proof of every tree up to `largest` leaves, built by logbook-core from the
/// nodes its compact range reports, with the root logbook-core computes.
fn proofs_from_logbook_core(leaf_hashes: &[Hash], largest: usize) -> Vec<Value> {
    let mut cases = Vec::new();
    for size in 1..=largest {
        let (nodes, root) = tree_of(&leaf_hashes[..size]);
        assert_eq!(root, merkle::root_from_leaf_hashes(&leaf_hashes[..size]));
        for (index, leaf_hash) in leaf_hashes[..size].iter().enumerate() {
            let proof = merkle::inclusion_proof(&nodes, index as u64, size as u64).unwrap();
            cases.push(json!({
                "leaf_hash": hex(leaf_hash),
                "index": index,
                "size": size,
                "proof": proof.iter().map(|hash| hex(hash)).collect::<Vec<_>>(),
                "root": hex(&root),
            }));
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_check_agrees_with_logbook_core_on_reference_proofs_exported_events_and_signatures()
 {
    let Some(tools) = browser_tools() else { return };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    site.serve();
    // Leaves that stress the canonical form and leaf version 2: key order by UTF-16 units,
    // ECMAScript numbers, escapes, a member named __proto__, null members, every address shape.
    let mut events = sample_events().as_array().unwrap().clone();
    events.extend([
        json!({"action": "a.b", "message": "Numbers \"quoted\"\n\u{2028}😀 </script><img src=x onerror=window.__pwned=1> &amp; '",
               "metadata": {"€": 1, "\r": 2, "😀": 3, "1": 4, "ö": 5, "～": 6,
                            "numbers": [1e21, 0.000001, -0.0, 1.5, 9007199254740991_i64, -12, 1e-7],
                            "__proto__": {"polluted": true}, "nothing": null,
                            "nested": {"b": [true, false, null], "a": {"z": "\u{1}\u{7f}"}}},
               "ip": "2001:db8:0:1::5", "user_agent": "curl/8 (\u{202e}evil)",
               "actor": {"id": "carol@acme.example", "name": "Çarol", "type": "user"}}),
        json!({"action": "a.b", "message": "zero network", "ip": "::1",
               "actor": {"id": "dave@acme.example", "name": "Dave"}}),
        json!({"action": "a.b", "message": "zeros in the network", "ip": "0:0:1::2"}),
        json!({"action": "a.b", "message": "mapped", "ip": "::ffff:192.0.2.1",
               "actor": {"id": "erin@acme.example", "type": "system"}}),
        json!({"action": "a.b", "message": "ipv4", "ip": "10.0.0.255", "outcome": "success",
               "key": "idempotency-1"}),
    ]);
    site.send(&key, Value::Array(events)).await;

    // Erasing a person makes leaf version 2 events carry salts and kept commitments instead.
    if let Some(mut server) = site.server.take() {
        server.kill().unwrap();
        server.wait().unwrap();
    }
    site.run(
        &[
            "retention",
            "erase",
            "--account",
            "acme",
            "--actor",
            "alice@acme.example",
            "--reason",
            "erasure request",
            "--by",
            "dpo@acme.example",
        ],
        "",
    );
    site.serve();

    let export = site
        .http
        .get(site.url("/api/v1/events/export/verifiable"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(export.status().is_success(), "{}", export.status());
    let export = export.text().await.unwrap();
    let mut lines: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let trailer = lines.pop().unwrap();
    assert!(
        lines.iter().any(|line| line["removed"]
            .as_array()
            .is_some_and(|removed| !removed.is_empty())),
        "an exported event has removed personal fields: {export}"
    );
    // The raw text of each event line, as the page embeds a stored event.
    let exported_events: Vec<Value> = export
        .lines()
        .zip(&lines)
        .map(|(text, line)| {
            json!({
                "text": text,
                "seq": line["seq"],
                "leaf_hash": line["leaf_hash"],
                "proof": line["inclusion_proof"],
            })
        })
        .collect();

    let reference_leaf_hashes: Vec<Hash> = REFERENCE_LEAVES
        .iter()
        .map(|leaf| merkle::hash_leaf(&bytes_of_hex(leaf)))
        .collect();
    assert_eq!(
        hex(&merkle::root_from_leaf_hashes(&reference_leaf_hashes)),
        REFERENCE_ROOT_OF_EIGHT
    );
    let mut more_leaf_hashes = reference_leaf_hashes.clone();
    for number in 0u32..37 {
        more_leaf_hashes.push(merkle::hash_leaf(&number.to_be_bytes()));
    }
    let proofs = proofs_from_logbook_core(&more_leaf_hashes, more_leaf_hashes.len());

    // Checkpoints signed by logbook-core with several keys, and the addresses' networks.
    let mut notes = Vec::new();
    for seed in 1u8..=4 {
        let signer =
            CheckpointSigner::generate([seed; 32], &format!("logbook{seed}.example")).unwrap();
        let root: Hash = [seed.wrapping_mul(37); 32];
        let size = u64::from(seed) * 1_000_000_007 + (1 << 40);
        let signed = signer
            .sign(&format!("logbook{seed}.example/acme"), size, &root)
            .unwrap();
        notes.push(json!({
            "note": signed.text,
            "key": signer.verifier().to_key_text(),
            "size": size.to_string(),
            "root": hex(&root),
        }));
    }
    let addresses = [
        "192.0.2.77",
        "0.0.0.0",
        "2001:db8::1",
        "2001:db8:0:1::5",
        "::1",
        "::",
        "0:0:1::2",
        "fe80:0:0:0:1:2:3:4",
        "1:0:2:3:4:5:6:7",
        "::ffff:192.0.2.1",
    ];
    let networks: Vec<Value> = addresses
        .iter()
        .map(|address| {
            json!({
                "ip": address,
                "network": logbook_core::personal_data::ip_network_text(address.parse().unwrap()),
            })
        })
        .collect();

    // `logbook checkpoint-key` only reads the key file, so it runs beside `logbook serve`.
    let published_key = published_checkpoint_key(&site);
    let chromium = Chromium::start(&tools).await;
    let browser = chromium.browser();
    sign_in(browser, &site, "owner@acme.example").await;
    // The hostile event's page: its text reaches the script byte for byte through the escaped
    // attribute (or its leaf would not match), and nothing in it runs.
    let hostile_event = lines
        .iter()
        .find(|line| line["message"].as_str().unwrap().starts_with("Numbers"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = open_checked_event(browser, &site, &hostile_event).await;
    assert_eq!(shown["outcome"], "verified", "{shown:#}");
    assert_nothing_ran(browser, "the hostile event's check").await;
    let html = browser
        .execute(
            "return fetch(location.href).then((answer) => answer.text());",
            json!([]),
        )
        .await;
    let html = html.as_str().unwrap();
    assert!(html.contains("id=\"browser-verification\""), "{html}");
    assert!(
        !html.contains('\u{202e}') && !html.contains('\u{2028}'),
        "the embedded event carries its bidi and line separator characters escaped: {html}"
    );
    let answers = browser
        .execute(
            "const [proofs, events, trailer, notes, networks] = arguments;
             return (async () => {
             const m = await import(document.getElementById('browser-verification').dataset.verifierScript);
             const bytes = (hex) => m.hexToBytes(hex, hex.length / 2, 'hex');
             const rethrown = async (run) => { try { return await run(); } catch (error) { return 'error: ' + error.message; } };
             const proofRoots = [];
             for (const c of proofs) {
               proofRoots.push(m.bytesToHex(await m.rootFromInclusionProof(bytes(c.leaf_hash), c.index, c.size, c.proof.map(bytes))));
             }
             const key = await m.parseVerifierKey(trailer.key);
             const checkpointText = await m.verifySignedNote(trailer.checkpoint, key);
             const body = m.parseCheckpointBody(checkpointText);
             const exported = [];
             for (const e of events) {
               exported.push(await rethrown(async () => {
                 const leaf = await m.eventLeaf(e.text);
                 const leafHash = m.bytesToHex(await m.leafHash(leaf.leafBytes));
                 const root = m.bytesToHex(await m.rootFromInclusionProof(bytes(e.leaf_hash), e.seq, body.treeSize, e.proof.map(bytes)));
                 return { kind: leaf.kind, leaf_hash: leafHash, root, removed_fields: leaf.removedFields };
               }));
             }
             const signatures = [];
             for (const n of notes) {
               signatures.push(await rethrown(async () => {
                 const k = await m.parseVerifierKey(n.key);
                 const b = m.parseCheckpointBody(await m.verifySignedNote(n.note, k));
                 // Every single character changed must be refused.
                 let accepted = 0;
                 for (let at = 0; at < n.note.length; at += 1) {
                   const changed = n.note.slice(0, at) + (n.note[at] === 'x' ? 'y' : 'x') + n.note.slice(at + 1);
                   const outcome = await rethrown(async () => m.parseCheckpointBody(await m.verifySignedNote(changed, k)));
                   if (typeof outcome !== 'string') accepted += 1;
                 }
                 return { label: k.label, size: String(b.treeSize), root: m.bytesToHex(b.rootHash), accepted_changes: accepted };
               }));
             }
             return {
               proof_roots: proofRoots,
               checkpoint: { size: String(body.treeSize), root: m.bytesToHex(body.rootHash), label: key.label },
               exported,
               signatures,
               networks: networks.map((n) => m.ipNetworkText(n.ip)),
             };
             })();",
            json!([
                proofs,
                exported_events,
                {
                    "checkpoint": trailer["checkpoint"],
                    "key": published_key,
                },
                notes,
                networks
            ]),
        )
        .await;

    for (case, root) in proofs
        .iter()
        .zip(answers["proof_roots"].as_array().unwrap())
    {
        assert_eq!(case["root"], *root, "proof {case}");
    }
    assert_eq!(
        answers["proof_roots"].as_array().unwrap().len(),
        proofs.len()
    );
    let checkpoint = logbook_core::checkpoint::CheckpointVerifier::from_key_text(&published_key)
        .unwrap()
        .parse_and_verify(trailer["checkpoint"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        answers["checkpoint"]["size"],
        checkpoint.tree_size.to_string()
    );
    assert_eq!(answers["checkpoint"]["root"], hex(&checkpoint.root_hash));
    let exported = answers["exported"].as_array().unwrap();
    assert_eq!(exported.len(), lines.len());
    for (line, answer) in lines.iter().zip(exported) {
        assert_eq!(answer["kind"], "verifiable", "{line}: {answer}");
        assert_eq!(answer["leaf_hash"], line["leaf_hash"], "{line}: {answer}");
        assert_eq!(
            answer["root"],
            hex(&checkpoint.root_hash),
            "{line}: {answer}"
        );
    }
    assert!(
        exported
            .iter()
            .any(|answer| answer["removed_fields"].as_u64() > Some(0)),
        "{exported:#?}"
    );
    for (note, answer) in notes.iter().zip(answers["signatures"].as_array().unwrap()) {
        let verifier = logbook_core::checkpoint::CheckpointVerifier::from_key_text(
            note["key"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(
            answer["label"],
            note["key"]
                .as_str()
                .unwrap()
                .splitn(3, '+')
                .take(2)
                .collect::<Vec<_>>()
                .join("+"),
            "{answer}"
        );
        let parsed = verifier
            .parse_and_verify(note["note"].as_str().unwrap())
            .unwrap();
        assert_eq!(answer["size"], parsed.tree_size.to_string(), "{answer}");
        assert_eq!(answer["root"], hex(&parsed.root_hash), "{answer}");
        assert_eq!(answer["accepted_changes"], 0, "{answer}");
    }
    let shown_networks: Vec<&str> = answers["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|network| network.as_str().unwrap())
        .collect();
    let expected_networks: Vec<&str> = networks
        .iter()
        .map(|network| network["network"].as_str().unwrap())
        .collect();
    assert_eq!(shown_networks, expected_networks);

    // Events the server can no longer produce, with proofs and a checkpoint from logbook-core: one
    // stored before leaf version 2 (plain leaf), and one erased before leaf version 2, whose leaf
    // hash the page can only take from the server, and says so.
    let before_version_2 = json!({
        "seq": 3, "id": "e-3", "account": "acme", "action": "user.login", "message": "old",
        "created_at": "2024-06-01T12:00:00Z", "received_at": "2024-06-01T12:00:01Z",
        "ip": "192.0.2.1", "actor": {"id": "alice@acme.example", "name": "Alice"}, "new_ip": true,
        "metadata": {"z": 1, "a": [0.5, "ü"]}
    });
    let erased_before_version_2 = json!({
        "seq": 5, "id": "e-5", "account": "acme", "action": "user.login", "message": "erased",
        "created_at": "2024-06-01T12:00:00Z", "received_at": "2024-06-01T12:00:01Z",
        "ip": null, "actor": {"id": "bob@acme.example", "name": null},
        "removed": ["actor.name", "ip"]
    });
    let mut leaf_hashes: Vec<Hash> = (0u8..8).map(|leaf| merkle::hash_leaf(&[leaf])).collect();
    leaf_hashes[3] = logbook_core::leaf::leaf_hash_of_bytes(
        &logbook_core::leaf::leaf_bytes_from_json_object(before_version_2.as_object().unwrap())
            .unwrap(),
    );
    leaf_hashes[5] = [0x55; 32];
    let (nodes, root) = tree_of(&leaf_hashes);
    let signer = CheckpointSigner::generate([9; 32], "logbook.example").unwrap();
    let checkpoint = signer.sign("logbook.example/acme", 8, &root).unwrap().text;
    let page_data = |event: &Value, seq: usize| {
        json!({
            "event": event.to_string(),
            "leafIndex": seq.to_string(),
            "treeSize": "8",
            "leafHash": hex(&leaf_hashes[seq]),
            "rootHash": hex(&root),
            "auditPath": merkle::inclusion_proof(&nodes, seq as u64, 8).unwrap().iter().map(|hash| hex(hash)).collect::<Vec<_>>().join(" "),
            "checkpoint": checkpoint,
            "signedAt": "",
            "verifierKey": signer.verifier().to_key_text(),
        })
    };
    let checked = browser
        .execute(
            "return (async () => {
               const m = await import(document.getElementById('browser-verification').dataset.verifierScript);
               const results = [];
               for (const data of arguments[0]) results.push(await m.checkEvent(data));
               return results.map((result) => ({ outcome: result.outcome, headline: result.headline, steps: result.steps }));
             })();",
            json!([[
                page_data(&before_version_2, 3),
                page_data(&erased_before_version_2, 5)
            ]]),
        )
        .await;
    assert_eq!(checked[0]["outcome"], "verified", "{checked:#}");
    assert_eq!(checked[0]["steps"][0]["outcome"], "ok", "{checked:#}");
    assert_eq!(checked[1]["outcome"], "verified", "{checked:#}");
    assert!(
        checked[1]["headline"]
            .as_str()
            .unwrap()
            .ends_with("The leaf hash itself was taken from the server (see below)."),
        "{checked:#}"
    );
    assert_eq!(checked[1]["steps"][0]["outcome"], "note", "{checked:#}");
    assert!(
        checked[1]["steps"][0]["text"]
            .as_str()
            .unwrap()
            .contains("personal data (actor.name, ip) was removed before leaf version 2"),
        "{checked:#}"
    );
    chromium.stop().await;
}

/// The nodes logbook-core's compact range reports for `leaf_hashes`, and their root.
fn tree_of(leaf_hashes: &[Hash]) -> (HashMap<NodeId, Hash>, Hash) {
    let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
    let mut range = CompactRange::new();
    for leaf_hash in leaf_hashes {
        range.append(*leaf_hash, |node| {
            nodes.insert(node.id, node.hash);
        });
    }
    (nodes, range.root())
}
