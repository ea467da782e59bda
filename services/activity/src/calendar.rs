//! UTC calendar arithmetic: periods (day, ISO week, month, quarter) and "the last N days"
//! windows.
//!
//! Everything here works on calendar dates rather than on durations, because that is how
//! people read activity ("three calls in March", "no contact for 45 days"): a 30-day window
//! ending on the 15th starts on the previous month's 16th whatever the hour of as_of.

use chrono::{Datelike, Days, NaiveDate};
use keyplan_domain::values::Timestamp;

use crate::error::ActivityError;

/// Longest range of days a counts query or a window may span (about ten years): bounds the
/// size of an answer and keeps every date far from the ends of the calendar.
pub const MAX_DAYS: u32 = 3660;

/// Length of the periods counts are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// One calendar day.
    Day,
    /// One ISO week, Monday to Sunday.
    Week,
    /// One calendar month.
    Month,
    /// One calendar quarter (January, April, July, October).
    Quarter,
}

impl Period {
    /// First day of the period that contains `date`.
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => date,
            Period::Week => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
            Period::Month => date.with_day(1).unwrap_or(date),
            Period::Quarter => {
                let month = (date.month0() / 3) * 3 + 1;
                NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date)
            }
        }
    }

    /// First day of the period after the one starting on `start` (`None` past the calendar's
    /// end).
    pub fn next_start(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Period::Day => start.checked_add_days(Days::new(1)),
            Period::Week => start.checked_add_days(Days::new(7)),
            Period::Month => start.checked_add_months(chrono::Months::new(1)),
            Period::Quarter => start.checked_add_months(chrono::Months::new(3)),
        }
    }
}

/// The periods covering `from..=to`, widened to whole periods: `(start, end)` of each, in
/// order. Refuses a reversed range and one wider than [`MAX_DAYS`] once widened.
pub fn periods(
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, NaiveDate)>, ActivityError> {
    if to < from {
        return Err(ActivityError::invalid(
            "to",
            format!("must not be before from ({from}), got {to}"),
        ));
    }
    let first = period.start_of(from);
    let last_start = period.start_of(to);
    let too_wide = || {
        ActivityError::invalid(
            "to",
            format!(
                "the range {from} to {to}, widened to whole periods, must span at most {MAX_DAYS} days; \
                 ask for a shorter range or a longer period"
            ),
        )
    };
    let mut out = Vec::new();
    let mut start = first;
    loop {
        let next = period.next_start(start).ok_or_else(too_wide)?;
        let end = next.pred_opt().ok_or_else(too_wide)?;
        out.push((start, end));
        if (end - first).num_days() >= i64::from(MAX_DAYS) {
            return Err(too_wide());
        }
        if start >= last_start {
            return Ok(out);
        }
        start = next;
    }
}

/// Midnight UTC at the start of `date`.
pub fn start_of_day(date: NaiveDate) -> Timestamp {
    Timestamp(
        date.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros(),
    )
}

/// The window "the last `days` days" ending at `as_of`: from midnight of the date `days`
/// calendar days before as_of's date, to `as_of` inclusive. An instant is in it exactly when
/// it is not after `as_of` and at most `days` calendar days before as_of's date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First date of the window.
    pub first_date: NaiveDate,
    /// First instant (midnight UTC of `first_date`).
    pub start: Timestamp,
    /// Last instant (inclusive).
    pub end: Timestamp,
}

impl Window {
    /// The last `days` days up to `as_of` (`days` already validated, as_of a sane instant).
    pub fn last_days(as_of: Timestamp, days: u32) -> Self {
        let first_date = as_of
            .date()
            .checked_sub_days(Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MIN);
        Self {
            first_date,
            start: start_of_day(first_date),
            end: as_of,
        }
    }
}

/// Calendar days from `earlier`'s date to `later`'s date (0 on the same day, never negative).
pub fn days_between(earlier: Timestamp, later: Timestamp) -> u32 {
    let days = (later.date() - earlier.date()).num_days();
    u32::try_from(days.max(0)).unwrap_or(u32::MAX)
}

/// Checks a request's day count: 1 to [`MAX_DAYS`].
pub fn check_days(field: &'static str, days: u32) -> Result<u32, ActivityError> {
    if days == 0 || days > MAX_DAYS {
        return Err(ActivityError::invalid(
            field,
            format!("must be between 1 and {MAX_DAYS} days, got {days}"),
        ));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn periods_start_on_monday_the_first_and_quarter_months() {
        // 2025-01-01 is a Wednesday: its ISO week starts on Monday 2024-12-30.
        assert_eq!(Period::Week.start_of(d(2025, 1, 1)), d(2024, 12, 30));
        assert_eq!(Period::Week.start_of(d(2025, 1, 6)), d(2025, 1, 6));
        assert_eq!(Period::Week.start_of(d(2025, 1, 12)), d(2025, 1, 6));
        assert_eq!(Period::Month.start_of(d(2025, 2, 28)), d(2025, 2, 1));
        assert_eq!(Period::Quarter.start_of(d(2025, 6, 30)), d(2025, 4, 1));
        assert_eq!(Period::Quarter.start_of(d(2025, 10, 1)), d(2025, 10, 1));
        assert_eq!(Period::Day.start_of(d(2025, 3, 3)), d(2025, 3, 3));
    }

    #[test]
    fn a_range_is_widened_to_whole_periods() {
        let q = periods(Period::Quarter, d(2025, 2, 10), d(2025, 8, 1)).expect("valid");
        assert_eq!(
            q,
            vec![
                (d(2025, 1, 1), d(2025, 3, 31)),
                (d(2025, 4, 1), d(2025, 6, 30)),
                (d(2025, 7, 1), d(2025, 9, 30)),
            ]
        );
        let w = periods(Period::Week, d(2025, 1, 1), d(2025, 1, 6)).expect("valid");
        assert_eq!(
            w,
            vec![
                (d(2024, 12, 30), d(2025, 1, 5)),
                (d(2025, 1, 6), d(2025, 1, 12)),
            ]
        );
        assert_eq!(
            periods(Period::Day, d(2025, 1, 1), d(2025, 1, 1)).expect("valid"),
            vec![(d(2025, 1, 1), d(2025, 1, 1))]
        );
    }

    #[test]
    fn reversed_and_oversized_ranges_are_refused() {
        assert!(periods(Period::Day, d(2025, 1, 2), d(2025, 1, 1)).is_err());
        assert!(periods(Period::Day, d(2000, 1, 1), d(2025, 1, 1)).is_err());
        assert!(periods(Period::Month, d(2015, 1, 1), d(2024, 12, 31)).is_ok());
    }

    #[test]
    fn a_window_counts_calendar_days() {
        let as_of = keyplan_testkit::at(2025, 3, 15, 8);
        let w = Window::last_days(as_of, 30);
        assert_eq!(w.first_date, d(2025, 2, 13));
        assert_eq!(w.start, keyplan_testkit::at(2025, 2, 13, 0));
        assert_eq!(
            days_between(keyplan_testkit::at(2025, 2, 13, 23), as_of),
            30
        );
        assert_eq!(days_between(as_of, as_of), 0);
        assert_eq!(days_between(as_of, keyplan_testkit::at(2025, 3, 1, 0)), 0);
    }
}
