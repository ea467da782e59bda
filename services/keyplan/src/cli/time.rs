//! Dates and instants as a person types them, and as the API wants them.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};
use prost_types::Timestamp;

use super::CliError;

/// Where in its day a bare date is taken.
#[derive(Debug, Clone, Copy)]
pub enum DayPoint {
    /// 00:00 UTC: something in effect from that day on (a team member "since" a date).
    StartOfDay,
    /// 12:00 UTC: when something happened on that day.
    Noon,
    /// 23:59:59 UTC: "as of" that day, everything of the day included.
    EndOfDay,
}

/// An instant from RFC 3339 (`2026-11-20T10:00:00Z`) or a date (`2026-11-20`).
pub fn instant(option: &str, given: &str, day: DayPoint) -> Result<Timestamp, CliError> {
    let given = given.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(given) {
        t.with_timezone(&Utc)
    } else if let Ok(date) = NaiveDate::parse_from_str(given, "%Y-%m-%d") {
        let time = match day {
            DayPoint::StartOfDay => NaiveTime::from_hms_opt(0, 0, 0),
            DayPoint::Noon => NaiveTime::from_hms_opt(12, 0, 0),
            DayPoint::EndOfDay => NaiveTime::from_hms_opt(23, 59, 59),
        }
        .unwrap_or_default();
        Utc.from_utc_datetime(&date.and_time(time))
    } else {
        return Err(CliError::Usage(format!(
            "{option}: {given:?} is neither a date (2026-11-20) nor an RFC 3339 instant \
             (2026-11-20T10:00:00Z)"
        )));
    };
    Ok(timestamp(at))
}

/// The date given for `option` (YYYY-MM-DD), else today.
pub fn date_or_today(option: &str, given: Option<String>) -> Result<String, CliError> {
    match given {
        Some(d) => date(option, &d),
        None => Ok(today()),
    }
}

/// `at` as a protobuf timestamp.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as `2026-11-20 10:00` (UTC), for tables.
pub fn minutes(at: Option<&Timestamp>) -> String {
    at.and_then(|t| Utc.timestamp_opt(t.seconds, 0).single())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A protobuf timestamp in RFC 3339.
pub fn rfc3339(at: &Timestamp) -> String {
    u32::try_from(at.nanos)
        .ok()
        .and_then(|nanos| Utc.timestamp_opt(at.seconds, nanos).single())
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{}s", at.seconds))
}

/// Today's date (UTC), YYYY-MM-DD.
pub fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

/// A date checked for its form before it is sent (the node checks the calendar).
pub fn date(option: &str, given: &str) -> Result<String, CliError> {
    NaiveDate::parse_from_str(given, "%Y-%m-%d")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
        // chrono also takes `2026-1-1`; the API takes only the full form.
        .filter(|formatted| formatted == given)
        .ok_or_else(|| CliError::Usage(format!("{option}: {given:?} is not a date (YYYY-MM-DD)")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_and_instants() {
        let t = instant("--at", "2026-11-20", DayPoint::Noon).unwrap();
        assert_eq!(rfc3339(&t), "2026-11-20T12:00:00Z");
        let t = instant("--as-of", "2026-11-20", DayPoint::EndOfDay).unwrap();
        assert_eq!(rfc3339(&t), "2026-11-20T23:59:59Z");
        let t = instant("--at", "2026-11-20T10:00:00+01:00", DayPoint::Noon).unwrap();
        assert_eq!(minutes(Some(&t)), "2026-11-20 09:00");
        assert!(instant("--at", "yesterday", DayPoint::Noon).is_err());
        assert!(date("--due", "2026-1-1").is_err());
    }
}
