//! Time formats: RFC 7231 IMF-fixdate (the TSV files), RFC 3339 with milliseconds (JSON
//! Lines), and `YYYY-MM-DD` UTC days (rotated file names).
//!
//! Formatting is done by hand (no allocation beyond the output, no time zone database): it
//! runs once per record. Parsing of IMF-fixdate ignores the day-of-week name, because it is
//! redundant and LINE's own guideline example (`Mon, 16 Jul 2021`) carries a wrong one
//! (16 July 2021 was a Friday); the writer always produces the correct name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::AuditError;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC calendar day, as a count of days since 1970-01-01.
pub type DayNumber = i64;

/// Seconds and sub-second milliseconds since the Unix epoch (negative for earlier times).
fn split(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
            d.subsec_millis(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
            if d.subsec_nanos() == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1000 - d.subsec_millis().min(999))
            }
        }
    }
}

/// (year, month 1–12, day 1–31) of a day number (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: DayNumber) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number of a (year, month, day) date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> DayNumber {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The UTC day of a time.
pub fn day_of(t: SystemTime) -> DayNumber {
    split(t).0.div_euclid(86_400)
}

/// Midnight UTC at the start of a day.
pub fn start_of_day(day: DayNumber) -> SystemTime {
    from_unix(day * 86_400, 0)
}

fn from_unix(secs: i64, millis: u32) -> SystemTime {
    let base = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    base + Duration::from_millis(u64::from(millis))
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: DayNumber) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` into a day number.
pub fn parse_day(s: &str) -> Option<DayNumber> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = digits(&s[0..4])?.into();
    let m = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Appends the IMF-fixdate form of `t` (`Fri, 16 Jul 2021 10:20:10 GMT`), truncated to the
/// second. The last second formatted is cached per thread.
pub fn push_imf_fixdate(t: SystemTime, out: &mut String) {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let (secs, _) = split(t);
    let cached = LAST.with(|cell| {
        let Ok(mut last) = cell.try_borrow_mut() else {
            return false;
        };
        if last.0 != secs {
            last.1.clear();
            format_imf_fixdate(secs, &mut last.1);
            last.0 = secs;
        }
        out.push_str(&last.1);
        true
    });
    if !cached {
        format_imf_fixdate(secs, out);
    }
}

fn format_imf_fixdate(secs: i64, out: &mut String) {
    let day = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(day);
    let wd = DAYS[day.rem_euclid(7) as usize];
    let mon = MONTHS[(m - 1) as usize];
    let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
    use std::fmt::Write as _;
    let _ = write!(out, "{wd}, {d:02} {mon} {y:04} {hh:02}:{mm:02}:{ss:02} GMT");
}

/// The IMF-fixdate form of `t`.
pub fn imf_fixdate(t: SystemTime) -> String {
    let mut s = String::with_capacity(29);
    push_imf_fixdate(t, &mut s);
    s
}

/// The RFC 3339 form of `t` in UTC with milliseconds (`2021-07-16T10:20:10.000Z`).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let (secs, ms) = split(t);
    let day = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(day);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn time_err(value: &str, expected: &str) -> AuditError {
    AuditError::Time {
        value: value.chars().take(64).collect(),
        expected: expected.to_owned(),
    }
}

fn hms(s: &str) -> Option<(i64, i64, i64)> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = i64::from(digits(&s[0..2])?);
    let m = i64::from(digits(&s[3..5])?);
    let sec = i64::from(digits(&s[6..8])?);
    (h < 24 && m < 60 && sec < 61).then_some((h, m, sec))
}

/// Parses an IMF-fixdate (`Mon, 16 Jul 2021 10:20:10 GMT`). The day-of-week name must be
/// one of the seven but is not checked against the date (see the module docs).
pub fn parse_imf_fixdate(s: &str) -> Result<SystemTime, AuditError> {
    let err = || time_err(s, "an IMF-fixdate like `Fri, 16 Jul 2021 10:20:10 GMT`");
    let parts: Vec<&str> = s.split(' ').collect();
    let [wd, d, mon, y, t, gmt] = parts.as_slice() else {
        return Err(err());
    };
    let wd = wd.strip_suffix(',').ok_or_else(err)?;
    if !DAYS.contains(&wd) || *gmt != "GMT" || d.len() != 2 || y.len() != 4 {
        return Err(err());
    }
    let m = MONTHS.iter().position(|x| x == mon).ok_or_else(err)? as u32 + 1;
    let y = i64::from(digits(y).ok_or_else(err)?);
    let d = digits(d).ok_or_else(err)?;
    if d == 0 || d > days_in_month(y, m) {
        return Err(err());
    }
    let (hh, mm, ss) = hms(t).ok_or_else(err)?;
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss;
    Ok(from_unix(secs, 0))
}

/// Parses RFC 3339 (`2021-07-16T10:20:10.123Z`, `2021-07-16T19:20:10+09:00`; the fraction
/// is optional and kept to the millisecond).
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, AuditError> {
    let err = || time_err(s, "an RFC 3339 time like `2021-07-16T10:20:10.000Z`");
    if s.len() < 20 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return Err(err());
    }
    let day = parse_day(&s[..10]).ok_or_else(err)?;
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return Err(err());
    }
    let (hh, mm, ss) = hms(&s[11..19]).ok_or_else(err)?;
    let mut rest = &s[19..];
    let mut millis = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(err());
        }
        let ms: String = frac[..n].chars().chain("000".chars()).take(3).collect();
        millis = digits(&ms).ok_or_else(err)?;
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let b = rest.as_bytes();
            if b.len() != 6 || b[3] != b':' || !matches!(b[0], b'+' | b'-') {
                return Err(err());
            }
            let h = i64::from(digits(&rest[1..3]).ok_or_else(err)?);
            let m = i64::from(digits(&rest[4..6]).ok_or_else(err)?);
            let o = h * 3600 + m * 60;
            if b[0] == b'+' { o } else { -o }
        }
    };
    let secs = day * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    Ok(from_unix(secs, millis))
}

/// Parses either format.
pub fn parse_any(s: &str) -> Result<SystemTime, AuditError> {
    if s.contains(',') {
        parse_imf_fixdate(s)
    } else {
        parse_rfc3339(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guideline_time_parses_and_formats() {
        let t = parse_imf_fixdate("Mon, 16 Jul 2021 10:20:10 GMT").unwrap();
        assert_eq!(imf_fixdate(t), "Fri, 16 Jul 2021 10:20:10 GMT");
        assert_eq!(rfc3339_millis(t), "2021-07-16T10:20:10.000Z");
        assert_eq!(format_day(day_of(t)), "2021-07-16");
    }

    #[test]
    fn matches_httpdate() {
        for secs in [
            0u64,
            951_782_400,
            1_626_430_810,
            4_102_444_799,
            1_709_164_800,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(imf_fixdate(t), httpdate::fmt_http_date(t));
            assert_eq!(parse_imf_fixdate(&imf_fixdate(t)).unwrap(), t);
        }
    }

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        let t = parse_rfc3339("2021-07-16T10:20:10.123Z").unwrap();
        assert_eq!(rfc3339_millis(t), "2021-07-16T10:20:10.123Z");
        let jst = parse_rfc3339("2021-07-16T19:20:10.123+09:00").unwrap();
        assert_eq!(jst, t);
        assert!(parse_rfc3339("2021-07-16T10:20:10").is_err());
        assert!(parse_rfc3339("2021-02-30T10:20:10Z").is_err());
    }

    #[test]
    fn days() {
        assert_eq!(parse_day("2021-07-16"), Some(18824));
        assert_eq!(format_day(18824), "2021-07-16");
        assert_eq!(parse_day("2021-13-01"), None);
        assert_eq!(parse_day("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_day("2023-02-29"), None);
    }
}
