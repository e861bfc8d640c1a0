//! Daily rotation at UTC midnight (injected clock) and retention.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use line_audit::timefmt::parse_rfc3339;
use line_audit::{AuditConfig, AuditLog, LogFormat, LogKind, Record, prune_dir};
use line_login::clock::{Clock, MockClock};

fn t(s: &str) -> SystemTime {
    parse_rfc3339(s).unwrap()
}

fn open(dir: &Path, clock: Arc<MockClock>) -> AuditLog {
    let mut config = AuditConfig::new(dir);
    config.fsync_interval = Some(Duration::from_millis(10));
    config.retention_days = 30;
    AuditLog::open_with_clock(config, clock).unwrap()
}

fn urls(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(
            |l| match Record::parse(LogKind::AuthorizationRequest, LogFormat::Tsv, l).unwrap() {
                Record::AuthorizationRequest(r) => r.url,
                _ => unreachable!(),
            },
        )
        .collect()
}

#[test]
fn rotates_at_utc_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::at(t("2021-07-16T23:59:59.000Z")));
    let log = open(dir.path(), Arc::clone(&clock));
    log.authorization_request(clock.now(), "https://x/?n=1")
        .unwrap();
    clock.set(t("2021-07-16T23:59:59.999Z"));
    log.authorization_request(clock.now(), "https://x/?n=2")
        .unwrap();
    clock.set(t("2021-07-17T00:00:00.000Z"));
    log.authorization_request(clock.now(), "https://x/?n=3")
        .unwrap();
    clock.set(t("2021-07-18T12:00:00.000Z"));
    log.authorization_request(clock.now(), "https://x/?n=4")
        .unwrap();

    assert_eq!(
        urls(&dir.path().join("authorization-request.log.2021-07-16")),
        ["https://x/?n=1", "https://x/?n=2"]
    );
    assert_eq!(
        urls(&dir.path().join("authorization-request.log.2021-07-17")),
        ["https://x/?n=3"]
    );
    assert_eq!(
        urls(&dir.path().join("authorization-request.log")),
        ["https://x/?n=4"]
    );
    // The other logs had nothing to rotate: no empty dated files appear.
    assert!(!dir.path().join("api-request.log.2021-07-16").exists());
}

#[test]
fn no_line_lost_or_duplicated_while_writers_cross_midnight() {
    const WRITERS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::at(t("2021-07-16T23:59:59.500Z")));
    let log = Arc::new(open(dir.path(), Arc::clone(&clock)));
    let stop = Arc::new(AtomicBool::new(false));
    let written: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = Arc::clone(&log);
                let stop = Arc::clone(&stop);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) || i < 200 {
                        let url = format!("https://x/?w={w}&i={i}");
                        log.authorization_request(log.now(), &url).unwrap();
                        mine.push(url);
                        i += 1;
                    }
                    mine
                })
            })
            .collect();
        // Let every day see writes, however slowly the threads get scheduled.
        let wait_for_more = |n: u64| {
            let start = log.stats().records;
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while log.stats().records < start + n && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_for_more(500);
        clock.set(t("2021-07-17T00:00:00.000Z"));
        wait_for_more(500);
        log.rotate_if_due();
        clock.set(t("2021-07-18T00:00:00.000Z"));
        wait_for_more(500);
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all_written: Vec<String> = written.into_iter().flatten().collect();
    let mut found = Vec::new();
    for name in [
        "authorization-request.log.2021-07-16",
        "authorization-request.log.2021-07-17",
        "authorization-request.log",
    ] {
        let u = urls(&dir.path().join(name));
        assert!(!u.is_empty(), "{name} is empty");
        found.extend(u);
    }
    assert_eq!(found.len(), all_written.len(), "lost or duplicated lines");
    let unique: HashSet<&String> = found.iter().collect();
    assert_eq!(unique.len(), found.len(), "duplicated lines");
    found.sort();
    all_written.sort();
    assert_eq!(found, all_written);
}

#[test]
fn a_file_left_from_an_earlier_day_is_rotated_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // The writer dates a file left behind by its modification time: real time here.
    let start = SystemTime::now();
    let clock = Arc::new(MockClock::at(start));
    let log = open(dir.path(), Arc::clone(&clock));
    log.authorization_request(clock.now(), "https://x/?before")
        .unwrap();
    drop(log);
    // The process comes back two days later.
    clock.advance(Duration::from_secs(2 * 86_400));
    let log = open(dir.path(), Arc::clone(&clock));
    log.authorization_request(clock.now(), "https://x/?after")
        .unwrap();
    let today = line_audit::timefmt::day_of(start);
    let rotated = dir.path().join(format!(
        "authorization-request.log.{}",
        line_audit::timefmt::format_day(today)
    ));
    assert_eq!(urls(&rotated), ["https://x/?before"]);
    assert_eq!(
        urls(&dir.path().join("authorization-request.log")),
        ["https://x/?after"]
    );
}

#[test]
fn retention_removes_only_rotated_files_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "api-request.log",
        "api-request.log.2021-06-15",
        "api-request.log.2021-06-16",
        "api-request.log.2021-06-17",
        "authorization-request.jsonl.2021-01-01",
        "authorization-response.log.2021-07-16",
        "notes.txt",
        "api-request.log.2021-06-15.bak",
    ] {
        std::fs::write(dir.path().join(name), "x\n").unwrap();
    }
    let now = t("2021-07-17T08:00:00Z");
    // Dry run reports, removes nothing.
    let dry = prune_dir(dir.path(), 30, now, true).unwrap();
    assert_eq!(dry.removed.len(), 3);
    assert!(dir.path().join("api-request.log.2021-06-15").exists());

    let report = prune_dir(dir.path(), 30, now, false).unwrap();
    let mut removed: Vec<String> = report
        .removed
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    removed.sort();
    // 2021-07-17 minus 2021-06-16 is 31 days (> 30): removed; 2021-06-17 is 30: kept.
    assert_eq!(
        removed,
        [
            "api-request.log.2021-06-15",
            "api-request.log.2021-06-16",
            "authorization-request.jsonl.2021-01-01"
        ]
    );
    for kept in [
        "api-request.log",
        "api-request.log.2021-06-17",
        "authorization-response.log.2021-07-16",
        "notes.txt",
        "api-request.log.2021-06-15.bak",
    ] {
        assert!(dir.path().join(kept).exists(), "{kept}");
    }
}

#[test]
fn audit_log_prune_rotates_a_quiet_file_then_expires_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::at(t("2021-07-16T10:00:00Z")));
    let log = open(dir.path(), Arc::clone(&clock));
    log.authorization_request(clock.now(), "https://x/?old")
        .unwrap();
    std::fs::write(dir.path().join("api-request.log.2021-05-01"), "x\n").unwrap();
    clock.set(t("2021-08-20T10:00:00Z"));
    let report = log.prune(clock.now()).unwrap();
    // The quiet live file was rotated to .2021-07-16 (35 days old > 30) and removed too.
    assert_eq!(report.removed.len(), 2, "{report:?}");
    assert!(
        !dir.path()
            .join("authorization-request.log.2021-07-16")
            .exists()
    );
    assert!(dir.path().join("authorization-request.log").exists());
}

#[tokio::test]
async fn maintenance_task_prunes_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
    let old = dir.path().join("api-request.log.2001-01-01");
    std::fs::write(&old, "x\n").unwrap();
    let task = log.spawn_maintenance(Duration::from_millis(10)).unwrap();
    for _ in 0..2000 {
        if !old.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(!old.exists());
}

#[test]
fn maintenance_outside_a_runtime_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
    assert!(log.spawn_maintenance(Duration::from_secs(60)).is_err());
}

#[test]
fn invalid_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AuditConfig::new(dir.path());
    config.retention_days = 0;
    assert!(AuditLog::open(config).is_err());
}

#[test]
fn rotating_onto_an_existing_dated_file_appends_instead_of_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let old = "Fri, 16 Jul 2021 10:00:00 GMT\thttps://x/?n=old\n";
    let live = "Fri, 16 Jul 2021 23:00:00 GMT\thttps://x/?n=live\n";
    std::fs::write(dir.path().join("authorization-request.log.2021-07-16"), old).unwrap();
    let live_path = dir.path().join("authorization-request.log");
    std::fs::write(&live_path, live).unwrap();
    // The live file was last written on 2021-07-16 (e.g. the clock had been set back).
    std::fs::File::options()
        .write(true)
        .open(&live_path)
        .unwrap()
        .set_modified(t("2021-07-16T23:00:00Z"))
        .unwrap();
    let clock = Arc::new(MockClock::at(t("2021-07-17T08:00:00Z")));
    let log = open(dir.path(), Arc::clone(&clock));
    log.authorization_request(clock.now(), "https://x/?n=new")
        .unwrap();
    assert_eq!(
        urls(&dir.path().join("authorization-request.log.2021-07-16")),
        ["https://x/?n=old", "https://x/?n=live"]
    );
    assert_eq!(urls(&live_path), ["https://x/?n=new"]);
}

/// Two instances of a fleet sharing one directory: each writes and rotates its own files
/// (`authorization-request.a.log` → `authorization-request.a.log.2021-07-16`), records keep
/// their format, and a search of the directory reads both, merged by time.
#[test]
fn instances_sharing_a_directory_write_and_rotate_their_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::at(t("2021-07-16T23:00:00.000Z")));
    let open_as = |name: &str| {
        let mut config = AuditConfig::new(dir.path());
        config.fsync_interval = None;
        config.instance = Some(name.to_owned());
        AuditLog::open_with_clock(config, Arc::clone(&clock) as line_login::clock::SharedClock)
            .unwrap()
    };
    let (a, b) = (open_as("a"), open_as("b"));
    a.authorization_request(clock.now(), "https://x/?n=1")
        .unwrap();
    clock.set(t("2021-07-16T23:30:00.000Z"));
    b.authorization_request(clock.now(), "https://x/?n=2")
        .unwrap();
    clock.set(t("2021-07-17T00:10:00.000Z"));
    a.authorization_request(clock.now(), "https://x/?n=3")
        .unwrap();
    b.authorization_request(clock.now(), "https://x/?n=4")
        .unwrap();

    let p = |name: &str| dir.path().join(name);
    assert_eq!(
        urls(&p("authorization-request.a.log.2021-07-16")),
        ["https://x/?n=1"]
    );
    assert_eq!(
        urls(&p("authorization-request.b.log.2021-07-16")),
        ["https://x/?n=2"]
    );
    assert_eq!(urls(&p("authorization-request.a.log")), ["https://x/?n=3"]);
    assert_eq!(urls(&p("authorization-request.b.log")), ["https://x/?n=4"]);
    assert!(!p("authorization-request.log").exists());

    let found = line_audit::search(dir.path(), &line_audit::Query::default()).unwrap();
    let seen: Vec<String> = found
        .entries
        .iter()
        .map(|e| match &e.record {
            Record::AuthorizationRequest(r) => r.url.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        seen,
        [
            "https://x/?n=1",
            "https://x/?n=2",
            "https://x/?n=3",
            "https://x/?n=4"
        ]
    );
    let instances: HashSet<Option<String>> = line_audit::list_log_files(dir.path())
        .unwrap()
        .into_iter()
        .map(|f| f.instance)
        .collect();
    assert_eq!(
        instances,
        HashSet::from([Some("a".to_owned()), Some("b".to_owned())])
    );
}

#[test]
fn an_instance_name_that_could_split_a_file_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["a.b", "", "a/b", "ü"] {
        let mut config = AuditConfig::new(dir.path());
        config.instance = Some(bad.to_owned());
        assert!(
            matches!(
                AuditLog::open(config),
                Err(line_audit::AuditError::Config(_))
            ),
            "{bad:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn log_files_are_created_for_the_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::at(t("2021-07-16T23:59:59.000Z")));
    let log = open(dir.path(), Arc::clone(&clock));
    log.authorization_request(clock.now(), "https://x/?n=1")
        .unwrap();
    clock.set(t("2021-07-17T00:00:01.000Z"));
    log.authorization_request(clock.now(), "https://x/?n=2")
        .unwrap();
    for name in [
        "authorization-request.log",
        "authorization-request.log.2021-07-16",
    ] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}
