//! Rendering of search results and traces: aligned tables and timelines for people, JSON for
//! scripts. Values shown to people are escaped (`line_audit::escape`), so a control character
//! logged by an attacker can neither break the layout nor drive the terminal.
//!
//! JSON output goes through [`json_line`]: serde_json escapes C0 controls but writes DEL, the
//! C1 controls (`U+0080`–`U+009F`, among them `U+0085` NEL and `U+009B` CSI) and
//! `U+2028`/`U+2029` raw, and a terminal or a log viewer acts on them. `json_line` writes
//! them as `\u0085` etc.: still valid JSON with the same values. Post-processing serde_json's
//! text is safe because those characters can only occur inside its string literals (all JSON
//! structure is ASCII) and a backslash there is always followed by ASCII.

use std::io::{self, Write};
use std::time::SystemTime;

use line_audit::escape::escape;
use line_audit::timefmt::rfc3339_millis;
use line_audit::trace::query_param;
use line_audit::{Entry, Link, LogKind, Record, Trace};
use serde_json::{Value, json};

/// `2021-07-16 10:20:10` (UTC), with `.123` when the record has milliseconds.
fn human_time(t: SystemTime) -> String {
    let s = rfc3339_millis(t);
    let s = s.trim_end_matches('Z');
    let s = s.strip_suffix(".000").unwrap_or(s);
    s.replacen('T', " ", 1)
}

/// Whether a character JSON output must escape beyond what serde_json does: DEL, C1
/// controls, `U+2028`, `U+2029` (C0 controls serde_json escapes itself).
fn json_must_escape(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}')
}

/// `v` as one line of JSON without any raw control character or line/paragraph separator
/// (see the module doc).
pub fn json_line(v: &Value) -> String {
    use std::fmt::Write as _;
    let text = v.to_string();
    if !text.chars().any(json_must_escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if json_must_escape(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// One JSON object for a search hit: the record's fields plus where it was found.
pub fn entry_json(e: &Entry) -> Value {
    let mut v = e.record.to_json();
    if let Value::Object(m) = &mut v {
        m.insert("file".into(), e.file.display().to_string().into());
        m.insert("line".into(), e.line.into());
    }
    v
}

struct Row {
    cells: [String; 6],
    bodies: Option<(Option<String>, Option<String>)>,
}

fn row(e: &Entry) -> Row {
    let dash = || "-".to_owned();
    match &e.record {
        Record::AuthorizationRequest(r) => Row {
            cells: [
                human_time(r.time),
                "authorize".into(),
                dash(),
                dash(),
                dash(),
                escape(&r.url),
            ],
            bodies: None,
        },
        Record::AuthorizationResponse(r) => Row {
            cells: [
                human_time(r.time),
                "callback".into(),
                dash(),
                escape(&r.method),
                dash(),
                escape(&r.path),
            ],
            bodies: None,
        },
        Record::ApiRequest(a) => Row {
            cells: [
                human_time(a.time),
                "api".into(),
                escape(&a.status_text()),
                escape(&a.method),
                a.request_id.as_deref().map_or_else(dash, escape),
                escape(&a.endpoint),
            ],
            bodies: a.has_body_columns.then(|| {
                (
                    a.request_body.as_deref().map(escape),
                    a.response_body.as_deref().map(escape),
                )
            }),
        },
    }
}

/// The aligned table of `linelogin logs search`.
pub fn table(entries: &[Entry], bodies: bool, out: &mut impl Write) -> io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "no matching records");
    }
    let header = [
        "TIME (UTC)",
        "KIND",
        "STATUS",
        "METHOD",
        "REQUEST-ID",
        "TARGET",
    ];
    let rows: Vec<Row> = entries.iter().map(row).collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(&r.cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6], out: &mut dyn Write| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                let pad = widths[i] - c.chars().count() + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(header, out)?;
    for r in &rows {
        line(r.cells.each_ref().map(String::as_str), out)?;
        if bodies && let Some((req, resp)) = &r.bodies {
            let indent = widths[0] + 2;
            let req = req.as_deref().unwrap_or("-");
            let resp = resp.as_deref().unwrap_or("-");
            writeln!(out, "{:indent$}request:  {req}", "")?;
            writeln!(out, "{:indent$}response: {resp}", "")?;
        }
    }
    writeln!(out, "{} record(s)", entries.len())
}

fn link_name(link: &Link) -> &'static str {
    match link {
        Link::Key => "key",
        Link::State => "state",
        Link::CodeHash => "code_hash",
        Link::TokenHash(_) => "token_hash",
        Link::Nearby => "nearby",
    }
}

/// The JSON of `linelogin logs trace --json`.
pub fn trace_json(t: &Trace) -> Value {
    let events: Vec<Value> = t
        .events
        .iter()
        .map(|e| {
            let mut v = entry_json(&e.entry);
            if let Value::Object(m) = &mut v {
                m.insert("link".into(), link_name(&e.link).into());
                m.insert("link_detail".into(), e.link.describe().into());
                m.insert("proven".into(), e.link.is_proven().into());
            }
            v
        })
        .collect();
    json!({
        "key": t.key,
        "states": t.states,
        "code_hashes": t.code_hashes,
        "summary": summary(t),
        "ambiguous_api_calls": t.ambiguous,
        "events": events,
    })
}

/// One-line conclusions about the login, most important first.
fn summary(t: &Trace) -> Vec<String> {
    let mut lines = Vec::new();
    let callbacks: Vec<&str> = t
        .events
        .iter()
        .filter_map(|e| match &e.entry.record {
            Record::AuthorizationResponse(r) => Some(r.path.as_str()),
            _ => None,
        })
        .collect();
    let requests = t
        .events
        .iter()
        .filter(|e| e.entry.record.kind() == LogKind::AuthorizationRequest)
        .count();
    if requests == 0 {
        lines.push("no authorization request logged for this login".to_owned());
    }
    if callbacks.is_empty() {
        lines.push(
            "no callback logged: the user may have abandoned the login, or the callback never arrived"
                .to_owned(),
        );
    }
    for path in &callbacks {
        if let Some(error) = query_param(path, "error") {
            let desc = query_param(path, "error_description")
                .map(|d| format!(" ({})", escape(&d)))
                .unwrap_or_default();
            lines.push(format!(
                "LINE returned an error to the callback: {}{desc}",
                escape(&error)
            ));
        } else if query_param(path, "code").is_some() {
            lines.push("the callback carried an authorization code".to_owned());
        } else {
            lines.push("the callback carried neither a code nor an error".to_owned());
        }
    }
    let api: Vec<&line_audit::ApiRequest> = t
        .events
        .iter()
        .filter_map(|e| match &e.entry.record {
            Record::ApiRequest(a) => Some(a),
            _ => None,
        })
        .collect();
    let failed: Vec<String> = api
        .iter()
        .filter(|a| a.outcome_name() != "success")
        .map(|a| {
            format!(
                "{} {} -> {}",
                escape(&a.method),
                escape(&a.endpoint),
                escape(&a.status_text())
            )
        })
        .collect();
    if !api.is_empty() {
        if failed.is_empty() {
            lines.push(format!("{} API call(s), all succeeded", api.len()));
        } else {
            lines.push(format!(
                "{} API call(s), {} failed: {}",
                api.len(),
                failed.len(),
                failed.join("; ")
            ));
        }
    }
    if t.ambiguous > 0 {
        lines.push(format!(
            "{} API call(s) in the time window are left out: other logins' callbacks arrived at the \
             same time, so time cannot tell whose they are (turn on body logging to link calls exactly)",
            t.ambiguous
        ));
    }
    if t.events.iter().any(|e| !e.link.is_proven()) {
        lines.push(
            "events marked ~ are linked by time only (no request body logged to prove it)"
                .to_owned(),
        );
    }
    if t.states.len() > 1 {
        lines.push(format!(
            "{} different states matched: more than one login is shown",
            t.states.len()
        ));
    }
    lines
}

/// The timeline of `linelogin logs trace`.
pub fn timeline(t: &Trace, out: &mut impl Write) -> io::Result<()> {
    let Some(first) = t.events.first() else {
        return Ok(());
    };
    let start = first.entry.record.time();
    let end = t.events.last().map_or(start, |e| e.entry.record.time());
    let span = end.duration_since(start).unwrap_or_default();

    writeln!(out, "Login trace for {}", escape(&t.key))?;
    for s in &t.states {
        writeln!(out, "  state      {}", escape(s))?;
    }
    for h in &t.code_hashes {
        writeln!(out, "  code hash  {h}")?;
    }
    writeln!(
        out,
        "  span       {} .. {} UTC ({:.3} s, {} event(s))",
        human_time(start),
        human_time(end),
        span.as_secs_f64(),
        t.events.len()
    )?;
    for (i, s) in summary(t).iter().enumerate() {
        let label = if i == 0 { "result" } else { "" };
        writeln!(out, "  {label:<10} {s}")?;
    }
    writeln!(out)?;

    let offsets: Vec<String> = t
        .events
        .iter()
        .map(|e| {
            let d = e
                .entry
                .record
                .time()
                .duration_since(start)
                .unwrap_or_default();
            format!("+{:.3}s", d.as_secs_f64())
        })
        .collect();
    let off_w = offsets.iter().map(String::len).max().unwrap_or(0);
    let time_w = t
        .events
        .iter()
        .map(|e| human_time(e.entry.record.time()).len())
        .max()
        .unwrap_or(0);
    let indent = 2 + off_w + 2 + time_w + 2 + 2 + 10 + 1;
    for (e, off) in t.events.iter().zip(&offsets) {
        let mark = if e.link.is_proven() { ' ' } else { '~' };
        let (label, what) = match &e.entry.record {
            Record::AuthorizationRequest(r) => ("AUTHORIZE", escape(&r.url)),
            Record::AuthorizationResponse(r) => (
                "CALLBACK",
                format!("{} {}", escape(&r.method), escape(&r.path)),
            ),
            Record::ApiRequest(a) => {
                let rid = a
                    .request_id
                    .as_deref()
                    .map(|r| format!("  (request id {})", escape(r)))
                    .unwrap_or_default();
                let attempt = a
                    .attempt
                    .filter(|n| *n > 1)
                    .map(|n| format!("  (attempt {n})"))
                    .unwrap_or_default();
                (
                    "API",
                    format!(
                        "{} {} -> {}{rid}{attempt}",
                        escape(&a.method),
                        escape(&a.endpoint),
                        escape(&a.status_text())
                    ),
                )
            }
        };
        writeln!(
            out,
            "  {off:>off_w$}  {:<time_w$}  {mark} {label:<10} {what}",
            human_time(e.entry.record.time())
        )?;
        writeln!(out, "{:indent$}linked by: {}", "", e.link.describe())?;
        if let Record::ApiRequest(a) = &e.entry.record {
            if let Some(b) = &a.request_body {
                writeln!(out, "{:indent$}request:  {}", "", escape(b))?;
            }
            if let Some(b) = &a.response_body {
                writeln!(out, "{:indent$}response: {}", "", escape(b))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_escapes_del_c1_and_separators_and_keeps_the_value() {
        let value = "a\u{7f}b\u{85}c\u{9b}31md\u{2028}e\u{2029}f\\\u{85}\u{1b}g\u{a0}";
        let v = json!({ "k": value });
        let line = json_line(&v);
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        assert!(!line.contains('\u{2028}') && !line.contains('\u{2029}'));
        assert!(line.contains("\\u0085") && line.contains("\\u009b"));
        assert!(line.contains("\\u2028") && line.contains("\\u007f"));
        // U+00A0 is not a control: kept as it is.
        assert!(line.contains('\u{a0}'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
    }
}
