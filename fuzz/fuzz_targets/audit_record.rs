//! The guideline-log record reader (`line_audit::record`, `line_audit::escape`): any line of
//! any of the three logs, TSV or JSON Lines, as the search and trace commands read them.
//!
//! The first byte picks the log and the format. Properties: no panic; escaping round-trips
//! (`unescape(escape(s)) == s`, one line); a record read from TSV written back as TSV reads
//! back equal, and the same for JSON Lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use line_audit::escape::{escape, unescape};
use line_audit::{LogFormat, LogKind, Record};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(rest) else {
        return;
    };
    let escaped = escape(line);
    assert!(!escaped.contains(['\n', '\r', '\t']));
    assert_eq!(unescape(&escaped).ok().as_deref(), Some(line));
    let _ = unescape(line);

    // Low bits: the log (0, 1, 2 = authorization request, response, API); high bit: JSON Lines.
    let kind = LogKind::ALL[((sel & 0x7f) as usize) % 3];
    let format = if sel & 0x80 == 0 {
        LogFormat::Tsv
    } else {
        LogFormat::JsonLines
    };
    let Ok(record) = Record::parse(kind, format, line) else {
        return;
    };
    let _ = record.values();
    let written = match format {
        LogFormat::Tsv => record.to_tsv(),
        LogFormat::JsonLines => {
            let mut s = String::new();
            record.write_json_line(&mut s);
            s
        }
    };
    let mut again = Record::parse(kind, format, written.trim_end_matches('\n'));
    assert_eq!(again.as_ref().ok(), Some(&record), "{written:?}");
});
