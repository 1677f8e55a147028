//! Which read serves a rare term's page (`logbook_rare_term_pages_total`): a window of the newest
//! arrivals when they provably hold the page, the whole account otherwise. Its own test binary,
//! because it installs the process's metrics recorder.

use logbook_core::Store;
use logbook_core::event::NewEvent;
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use logbook_testkit::{EventBuilder, first_page_seqs};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use time::Duration;
use time::macros::datetime;

/// How many rare-term pages were read each way since the last call (a snapshot takes the
/// counts): (window, whole account).
fn pages_read(snapshotter: &Snapshotter) -> (u64, u64) {
    let mut reads = (0, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (key, DebugValue::Counter(count)) = (key.key(), value) else {
            continue;
        };
        if key.name() != "logbook_rare_term_pages_total" {
            continue;
        }
        match key
            .labels()
            .find(|label| label.key() == "read")
            .map(|label| label.value())
        {
            Some("window") => reads.0 += count,
            Some("whole_account") => reads.1 += count,
            other => panic!("unexpected read label {other:?}"),
        }
    }
    reads
}

/// 6,000 events of `account_name`, one every ten seconds in arrival order, every 40th
/// `quarantined`, targeting the server `srv-q` and of the action `server.quarantine`, every other
/// one a `user.login`, the `dated_ahead` one (if any) dated ten years ahead.
async fn store_events(store: &SqliteStore, account_name: &str, dated_ahead: Option<usize>) {
    let start = datetime!(2024-05-01 00:00 UTC);
    let events: Vec<NewEvent> = (0..6_000)
        .map(|number| {
            let created_at = if Some(number) == dated_ahead {
                start + Duration::days(3_650)
            } else {
                start + Duration::seconds(number as i64 * 10)
            };
            let message = if number % 40 == 0 {
                format!("event {number} quarantined")
            } else {
                format!("event {number}")
            };
            let (target, action) = if number % 40 == 0 {
                ("srv-q", "server.quarantine")
            } else {
                ("srv-other", "user.login")
            };
            EventBuilder::new(account_name)
                .created_at(created_at)
                .action(action)
                .message(&message)
                .target("server", target)
                .build()
        })
        .collect();
    for chunk in events.chunks(500) {
        store.append_events(chunk.to_vec()).await.unwrap();
    }
}

async fn newest_page(store: &SqliteStore, account_name: &str, text: &str) -> Vec<u64> {
    first_page_seqs(store, account_name, text, 50).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_words_targets_or_actions_newest_page_is_read_from_the_newest_arrivals_unless_one_is_dated_ahead()
 {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions::default(),
    )
    .unwrap();
    store_events(&store, "in-order", None).await;
    store_events(&store, "dated-ahead", Some(80)).await;

    // In arrival order: the window of the newest arrivals holds the page.
    let expected: Vec<u64> = (0..6_000_u64)
        .rev()
        .filter(|seq| seq % 40 == 0)
        .take(50)
        .collect();
    assert_eq!(
        newest_page(&store, "in-order", "quarantined").await,
        expected
    );
    assert_eq!(pages_read(&snapshotter), (1, 0));
    // A target's matches are gathered from its tokens the same way.
    assert_eq!(
        newest_page(&store, "in-order", "target:srv-q").await,
        expected
    );
    assert_eq!(pages_read(&snapshotter), (1, 0));
    // And an action's: a rare one, and one in nearly every event, whose window is the blocks
    // holding its newest matches.
    assert_eq!(
        newest_page(&store, "in-order", "action:server.quarantine").await,
        expected
    );
    assert_eq!(pages_read(&snapshotter), (1, 0));
    let newest_logins: Vec<u64> = (0..6_000_u64)
        .rev()
        .filter(|seq| seq % 40 != 0)
        .take(50)
        .collect();
    assert_eq!(
        newest_page(&store, "in-order", "action:user.login").await,
        newest_logins
    );
    assert_eq!(pages_read(&snapshotter), (1, 0));
    // A common action beside a `created:` range is tested on the rows of the range, which are
    // walked newest first: no window.
    let older_logins: Vec<u64> = (0..4_980_u64)
        .rev()
        .filter(|seq| seq % 40 != 0)
        .take(50)
        .collect();
    assert_eq!(
        newest_page(
            &store,
            "in-order",
            "action:user.login created:<2024-05-01T13:50:00Z"
        )
        .await,
        older_logins
    );
    assert_eq!(pages_read(&snapshotter), (0, 0));
    // A rare one is looked up: the blocks holding its 100 newest matches reach back to seq 2,000,
    // which holds the range's newest 50 (and no older arrival can come before them).
    let older_quarantines: Vec<u64> = (0..4_980_u64)
        .rev()
        .filter(|seq| seq % 40 == 0)
        .take(50)
        .collect();
    assert_eq!(
        newest_page(
            &store,
            "in-order",
            "action:server.quarantine created:<2024-05-01T13:50:00Z"
        )
        .await,
        older_quarantines
    );
    assert_eq!(pages_read(&snapshotter), (1, 0));

    // An old arrival dated ten years ahead is the newest match; below any window, it keeps
    // every window from proving the page, so the whole account is read, and the page is exact.
    let mut expected_ahead = vec![80_u64];
    expected_ahead.extend(
        (0..6_000_u64)
            .rev()
            .filter(|seq| seq % 40 == 0 && *seq != 80)
            .take(49),
    );
    assert_eq!(
        newest_page(&store, "dated-ahead", "quarantined").await,
        expected_ahead
    );
    assert_eq!(pages_read(&snapshotter), (0, 1));
    assert_eq!(
        newest_page(&store, "dated-ahead", "target:srv-q").await,
        expected_ahead
    );
    assert_eq!(pages_read(&snapshotter), (0, 1));
    assert_eq!(
        newest_page(&store, "dated-ahead", "action:server.quarantine").await,
        expected_ahead
    );
    assert_eq!(pages_read(&snapshotter), (0, 1));
}
