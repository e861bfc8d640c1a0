//! The two process-wide settings that keep the binary's resident memory flat under a long load
//! (`bench/soak.sh` shows the effect; these tests guard the facts it rests on).
//!
//! - SQLite (compiled into the binary) calls `malloc`/`free`. With glibc's malloc serving those
//!   calls, the server's resident memory rose about 0.5 MiB a minute: glibc kept the memory
//!   SQLite freed. mimalloc's `override` feature makes the binary define `malloc` and `free`
//!   itself, so the dynamic loader binds every caller in the process (the binary's C code and
//!   libc's own internal calls) to mimalloc, which returns freed pages to the system.
//! - Transparent huge pages are off for the process: with them, the kernel's `khugepaged` filled
//!   whole 2 MiB pages around mimalloc's few live 4 KiB pages, long after start-up.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// glibc's loader reports each symbol binding under `LD_DEBUG=bindings`, as
/// "binding file FROM [0] to TO [0]: normal symbol `malloc' [GLIBC_2.2.5]".
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn malloc_and_free_bind_to_the_binarys_own_allocator() {
    let exe = env!("CARGO_BIN_EXE_linelogin");
    let out = std::process::Command::new(exe)
        .arg("--version")
        .env("LD_DEBUG", "bindings")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = String::from_utf8_lossy(&out.stderr);
    for symbol in ["malloc", "free", "calloc", "realloc"] {
        let bindings: Vec<&str> = report
            .lines()
            .filter(|line| line.contains(&format!("normal symbol `{symbol}'")))
            .collect();
        assert!(
            !bindings.is_empty(),
            "the loader reported no binding of {symbol}:\n{report}"
        );
        for binding in bindings {
            let target = binding
                .split(" to ")
                .nth(1)
                .and_then(|rest| rest.split(" [").next())
                .unwrap_or_default();
            assert_eq!(
                std::fs::canonicalize(target).ok(),
                std::fs::canonicalize(exe).ok(),
                "{symbol} is served by {target}, not by the binary's mimalloc: {binding}"
            );
        }
    }
}

/// A running command reports `THP_enabled: 0` in `/proc/PID/status` (Linux 5.0 and later).
#[cfg(target_os = "linux")]
#[test]
fn transparent_huge_pages_are_off_for_the_running_binary() {
    // Past start-up: the emulator prints its banner once it serves.
    let (mut child, _stdout, _) = crate::common::started_emulator(&[], std::process::Stdio::null());
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
    child.kill().unwrap();
    child.wait().unwrap();
    let status = status.unwrap();
    let Some(thp) = status.lines().find(|l| l.starts_with("THP_enabled:")) else {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
        return;
    };
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "{thp}");
}
