//! RFC 3339 timestamps with nanoseconds in UTC, formatted the way Go's
//! `time.RFC3339Nano` does (trailing zeros of the fraction dropped), which
//! is what Docker's json-file logs and `docker inspect` show.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now() -> String {
    format(SystemTime::now())
}

pub fn format(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 → (year, month, day); H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_go() {
        let t = UNIX_EPOCH + Duration::new(0, 0);
        assert_eq!(format(t), "1970-01-01T00:00:00Z");
        // 2024-02-29T23:59:59.1234Z (leap day)
        let t = UNIX_EPOCH + Duration::new(1_709_251_199, 123_400_000);
        assert_eq!(format(t), "2024-02-29T23:59:59.1234Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 5); // 2000-02-29
        assert_eq!(format(t), "2000-02-29T00:00:00.000000005Z");
        let t = UNIX_EPOCH + Duration::new(4_102_444_800, 0); // 2100-01-01
        assert_eq!(format(t), "2100-01-01T00:00:00Z");
    }
}
