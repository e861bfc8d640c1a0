//! Concurrency, SIGKILL and recovery: every acknowledged record is there, and whole.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use line_audit::{AuditConfig, AuditLog, LogFormat, LogKind, Record};

fn open(dir: &Path) -> AuditLog {
    let mut config = AuditConfig::new(dir);
    config.fsync_interval = Some(Duration::from_millis(20));
    AuditLog::open(config).unwrap()
}

/// A value with tabs, newlines and other controls, long enough to make interleaving visible.
fn value(writer: usize, seq: usize) -> String {
    format!(
        "/callback?w={writer}&seq={seq}&junk=\t\r\n\u{0}{}",
        "x".repeat((writer * 37 + seq) % 700)
    )
}

fn parse_all(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "torn last line");
    text.lines()
        .map(|l| Record::parse(LogKind::AuthorizationResponse, LogFormat::Tsv, l).unwrap())
        .collect()
}

#[test]
fn many_concurrent_writers_never_interleave() {
    const WRITERS: usize = 16;
    const EACH: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let log = Arc::clone(&log);
            s.spawn(move || {
                for i in 0..EACH {
                    log.authorization_response(log.now(), "GET", &value(w, i))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(log.stats().records, (WRITERS * EACH) as u64);
    let records = parse_all(&dir.path().join("authorization-response.log"));
    assert_eq!(records.len(), WRITERS * EACH);
    let mut seen = HashSet::new();
    for r in records {
        let Record::AuthorizationResponse(r) = r else {
            panic!()
        };
        assert!(seen.insert(r.path.clone()), "duplicate {}", r.path);
    }
    for w in 0..WRITERS {
        for i in 0..EACH {
            assert!(seen.contains(&value(w, i)));
        }
    }
}

/// The child side of the kill test: runs only when spawned by `sigkill_loses_no_acknowledged_record`.
#[test]
fn kill_child_writer() {
    let Ok(dir) = std::env::var("LINE_AUDIT_KILL_CHILD_DIR") else {
        return;
    };
    let log = Arc::new(open(Path::new(&dir)));
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(1024);
    std::thread::scope(|s| {
        for w in 0..4 {
            let log = Arc::clone(&log);
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0.. {
                    let v = value(w, i);
                    log.authorization_response(log.now(), "GET", &v).unwrap();
                    // Acknowledge only after the write returned.
                    if tx.send(format!("{w} {i}")).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let stdout = std::io::stdout();
        for ack in rx {
            let mut out = stdout.lock();
            writeln!(out, "ACK {ack}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn sigkill_loses_no_acknowledged_record_and_leaves_no_torn_line() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "durability::kill_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LINE_AUDIT_KILL_CHILD_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut acked = Vec::new();
        let mut line = String::new();
        // Let it run into a burst, then SIGKILL it mid-flight.
        let target = 5_000 + round * 7_919;
        while acked.len() < target {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(ack) = line.trim_end().strip_prefix("ACK ") {
                acked.push(ack.to_owned());
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        // Acks already in the pipe were written before the kill: collect them too.
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(ack) = line.trim_end().strip_prefix("ACK ") {
                acked.push(ack.to_owned());
            }
        }
        child.wait().unwrap();
        assert!(acked.len() >= target, "child stopped early");

        let path = dir.path().join("authorization-response.log");
        let text = std::fs::read_to_string(&path).unwrap();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        // Every complete line is a whole record.
        let mut present = HashSet::new();
        for l in complete.lines() {
            let Record::AuthorizationResponse(r) =
                Record::parse(LogKind::AuthorizationResponse, LogFormat::Tsv, l).unwrap()
            else {
                panic!()
            };
            present.insert(r.path);
        }
        for ack in &acked {
            let (w, i) = ack.split_once(' ').unwrap();
            let v = value(w.parse().unwrap(), i.parse().unwrap());
            assert!(present.contains(&v), "acknowledged record {ack} missing");
        }
        // Reopening repairs any unterminated tail left by a write cut short; new records
        // then start on a fresh line.
        let log = open(dir.path());
        log.authorization_response(log.now(), "GET", "/after-restart")
            .unwrap();
        drop(log);
        let records = parse_all(&path);
        assert!(records.len() > acked.len());
    }
}

#[test]
fn reopen_cuts_an_unterminated_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authorization-response.log");
    std::fs::write(
        &path,
        "Fri, 16 Jul 2021 10:20:20 GMT\tGET\t/callback?code=a\nFri, 16 Jul 2021 10:2",
    )
    .unwrap();
    let log = open(dir.path());
    log.authorization_response(log.now(), "GET", "/callback?code=b")
        .unwrap();
    drop(log);
    let records = parse_all(&path);
    assert_eq!(records.len(), 2);
}

#[test]
fn writing_from_a_tokio_runtime_does_not_need_spawn_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..500 {
                    log.authorization_request(log.now(), &format!("https://x/?t={t}&i={i}"))
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    log.sync().unwrap();
    let text = std::fs::read_to_string(dir.path().join("authorization-request.log")).unwrap();
    assert_eq!(text.lines().count(), 4000);
}
