//! Value objects of the KAM domain: times, money and the closed vocabularies
//! (tiers, buying roles, attitudes, channels...).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::DomainError;

/// An instant, in microseconds since the Unix epoch (UTC).
///
/// Microseconds rather than `chrono::DateTime` so that the stored (postcard) form is a single
/// varint and hashes the same on every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// From seconds and nanoseconds since the epoch (the protobuf `Timestamp` form).
    pub fn from_parts(seconds: i64, nanos: i32) -> Self {
        // Saturating throughout: these come from clients, and an absurd `seconds` must give an
        // absurd (and then refused) instant, not an overflow panic.
        Self(
            seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(nanos) / 1_000),
        )
    }

    /// Seconds and nanoseconds since the epoch (the protobuf `Timestamp` form).
    pub fn to_parts(self) -> (i64, i32) {
        let seconds = self.0.div_euclid(1_000_000);
        let nanos = (self.0.rem_euclid(1_000_000) * 1_000) as i32;
        (seconds, nanos)
    }

    /// The UTC calendar date of this instant.
    pub fn date(self) -> NaiveDate {
        DateTime::<Utc>::from_timestamp_micros(self.0)
            .map(|t| t.date_naive())
            .unwrap_or(NaiveDate::MIN)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => write!(f, "{}us", self.0),
        }
    }
}

/// A calendar date (business dates: due dates, plan periods, review dates).
pub type Date = NaiveDate;

/// Earliest date the API accepts anywhere (commands hold business dates to a narrower range,
/// see `decide::EARLIEST_DATE`).
pub const MIN_DATE: Date = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Latest date the API accepts anywhere: the last one with a four-digit year.
pub const MAX_DATE: Date = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// Parses a calendar date, strictly `YYYY-MM-DD` (four, two and two ASCII digits: no sign,
/// no space, no time, no missing zero), between [`MIN_DATE`] and [`MAX_DATE`]; `what` names
/// the field in the error.
pub fn parse_date(what: &'static str, value: &str) -> Result<Date, DomainError> {
    let b = value.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let date = shaped
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            DomainError::invalid(
                what,
                format!(
                    "must be a date as YYYY-MM-DD, got {}",
                    crate::text::quote(value)
                ),
            )
        })?;
    if !(MIN_DATE..=MAX_DATE).contains(&date) {
        return Err(DomainError::invalid(
            what,
            format!("must be between {MIN_DATE} and {MAX_DATE}, got {date}"),
        ));
    }
    Ok(date)
}

/// An amount of money: ISO-4217 currency code and an integer number of minor units
/// (cents), so that sums are exact.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Three upper-case letters, e.g. `EUR`.
    pub currency: String,
    /// Amount in the currency's minor unit (e.g. cents); never negative in this domain.
    pub minor_units: i64,
}

impl Money {
    /// Largest amount a command may carry, in minor units: 10^15 (ten trillion euros in
    /// cents). Far above any real deal, and low enough that sums of amounts never come near
    /// the limits of `i64` (read models add them up in `i128` anyway).
    pub const MAX_MINOR_UNITS: i64 = 1_000_000_000_000_000;

    /// Validates currency syntax and the amount (0 to [`Money::MAX_MINOR_UNITS`]); `what`
    /// names the field in the error.
    pub fn validate(&self, what: &'static str) -> Result<(), DomainError> {
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(DomainError::invalid(
                what,
                format!(
                    "currency must be a three-letter ISO-4217 code such as EUR, got {}",
                    crate::text::quote(&self.currency)
                ),
            ));
        }
        if self.minor_units < 0 {
            return Err(DomainError::invalid(
                what,
                format!("must not be negative, got {} minor units", self.minor_units),
            ));
        }
        if self.minor_units > Self::MAX_MINOR_UNITS {
            return Err(DomainError::invalid(
                what,
                format!(
                    "must be at most {} minor units (10^15), got {}",
                    Self::MAX_MINOR_UNITS,
                    self.minor_units
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}.{:02}",
            self.currency,
            self.minor_units / 100,
            self.minor_units % 100
        )
    }
}

/// Declares a closed vocabulary: a fieldless enum with a stable snake_case name per variant.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable, human-readable name of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// Programme tier of an account. Ordered: standard < key < strategic.
    Tier {
        /// Not (or no longer) in the key account programme.
        Standard => "standard",
        /// A key account.
        Key => "key",
        /// The highest tier: a strategic account.
        Strategic => "strategic",
    }
);

vocabulary!(
    /// Role of a supplier person in the key account team.
    TeamRole {
        /// The key account manager who owns the relationship (at most one per account).
        KeyAccountManager => "key account manager",
        /// Executive sponsor.
        ExecutiveSponsor => "executive sponsor",
        /// Sales.
        Sales => "sales",
        /// Operations.
        Operations => "operations",
        /// Supply chain.
        SupplyChain => "supply chain",
        /// Customer service.
        Service => "service",
        /// Any other contributor.
        Other => "other",
    }
);

vocabulary!(
    /// Kind of plan period.
    PlanPeriodKind {
        /// January 1 to December 31.
        CalendarYear => "calendar year",
        /// Six months.
        HalfYear => "half year",
        /// Twelve months from the start date, rolled forward.
        Rolling12Months => "rolling 12 months",
        /// No end date.
        Perpetual => "perpetual",
    }
);

vocabulary!(
    /// Sections of an account plan whose text is revised as a whole.
    PlanSection {
        /// The customer's business, industries, initiatives, HQ and contacts.
        AccountOverview => "account overview",
        /// Relationship history, the customer's projects, buying process.
        CustomerLandscape => "customer landscape",
        /// Competitors present in the account.
        Competitors => "competitors",
        /// Narrative of the revenue snapshot.
        RevenueSnapshot => "revenue snapshot",
        /// Risks and threats.
        Risks => "risks",
        /// Strategy / value proposition.
        Strategy => "strategy",
    }
);

vocabulary!(
    /// Status of an objective.
    ObjectiveStatus {
        /// Not started.
        NotStarted => "not started",
        /// On track.
        OnTrack => "on track",
        /// At risk.
        AtRisk => "at risk",
        /// Off track.
        OffTrack => "off track",
        /// Achieved (final).
        Achieved => "achieved",
        /// Abandoned (final).
        Abandoned => "abandoned",
    }
);

impl ObjectiveStatus {
    /// Whether no further progress can be recorded.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Achieved | Self::Abandoned)
    }
}

vocabulary!(
    /// Stage of an open opportunity (won and lost are recorded by their own events).
    OpportunityStage {
        /// Identified, not yet qualified.
        Identified => "identified",
        /// Qualified.
        Qualified => "qualified",
        /// Proposal sent.
        Proposal => "proposal",
        /// In negotiation.
        Negotiation => "negotiation",
    }
);

vocabulary!(
    /// Role of a stakeholder in the customer's buying process.
    BuyingRole {
        /// Signs off the money.
        EconomicBuyer => "economic buyer",
        /// Judges the technical fit.
        TechnicalBuyer => "technical buyer",
        /// Uses what is bought.
        User => "user",
        /// Shapes the opinion of others.
        Influencer => "influencer",
        /// Controls access.
        Gatekeeper => "gatekeeper",
        /// Coach / champion inside the customer.
        Coach => "coach",
    }
);

vocabulary!(
    /// Attitude of a stakeholder toward the supplier, from best to worst.
    Attitude {
        /// Actively sells for us.
        Champion => "champion",
        /// Favourable.
        Supporter => "supporter",
        /// Neutral.
        Neutral => "neutral",
        /// Critical.
        Critic => "critic",
        /// Works against us.
        Blocker => "blocker",
    }
);

vocabulary!(
    /// Channel of an interaction.
    Channel {
        /// Meeting in person.
        InPerson => "in person",
        /// Video call.
        VideoCall => "video call",
        /// Phone call.
        PhoneCall => "phone call",
        /// Email.
        Email => "email",
        /// Visit of the customer's site.
        SiteVisit => "site visit",
        /// Quarterly business review.
        BusinessReview => "business review",
        /// Event (conference, dinner...).
        Event => "event",
    }
);

vocabulary!(
    /// Sentiment of an interaction, from worst to best.
    Sentiment {
        /// Very negative.
        VeryNegative => "very negative",
        /// Negative.
        Negative => "negative",
        /// Neutral.
        Neutral => "neutral",
        /// Positive.
        Positive => "positive",
        /// Very positive.
        VeryPositive => "very positive",
    }
);

vocabulary!(
    /// Kind of review.
    ReviewKind {
        /// Internal review of the account plan.
        InternalPlanReview => "internal plan review",
        /// Quarterly business review with the customer.
        QuarterlyBusinessReview => "quarterly business review",
        /// Executive review.
        Executive => "executive review",
    }
);

vocabulary!(
    /// Outcome of a held review.
    ReviewOutcome {
        /// Approved.
        Approved => "approved",
        /// Approved with changes.
        ApprovedWithChanges => "approved with changes",
        /// Rejected.
        Rejected => "rejected",
        /// Escalated.
        Escalated => "escalated",
    }
);

vocabulary!(
    /// Health rating given at a review.
    HealthRating {
        /// Healthy.
        Green => "green",
        /// Needs attention.
        Amber => "amber",
        /// At risk.
        Red => "red",
    }
);

/// How often a plan is reviewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewFrequency {
    /// Every month.
    Monthly,
    /// Every three months.
    Quarterly,
    /// Every six months.
    HalfYearly,
    /// Every year.
    Yearly,
}

impl ReviewFrequency {
    /// Every value.
    pub const ALL: &'static [ReviewFrequency] = &[
        Self::Monthly,
        Self::Quarterly,
        Self::HalfYearly,
        Self::Yearly,
    ];

    /// The interval between reviews, in months.
    pub fn months(self) -> u32 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 3,
            Self::HalfYearly => 6,
            Self::Yearly => 12,
        }
    }

    /// Human-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::HalfYearly => "half-yearly",
            Self::Yearly => "yearly",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strictly_four_two_two_digits_within_the_range() {
        assert_eq!(
            parse_date("due_on", "2026-01-01").ok(),
            NaiveDate::from_ymd_opt(2026, 1, 1)
        );
        assert!(parse_date("due_on", "1900-01-01").is_ok());
        assert!(parse_date("due_on", "9999-12-31").is_ok());
        for bad in [
            "2026-1-1",
            "2026-01-1",
            "+2026-01-01",
            " 2026-01-01",
            "2026-01-01 ",
            "2026-01-01T00:00:00Z",
            "20260101",
            "2026-02-30",
            "0000-01-01",
            "1899-12-31",
            "+10000-01-01",
            "٢٠٢٦-٠١-٠١",
            "",
        ] {
            assert!(parse_date("due_on", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_huge_date_is_not_echoed_whole() {
        let Err(error) = parse_date("prepared_on", &"9".repeat(1 << 20)) else {
            panic!("a huge date was accepted");
        };
        assert!(error.to_string().len() < 300, "{}", error.to_string().len());
    }

    #[test]
    fn money_is_bounded() {
        let eur = |minor_units| Money {
            currency: "EUR".into(),
            minor_units,
        };
        assert!(eur(Money::MAX_MINOR_UNITS).validate("value").is_ok());
        assert!(eur(Money::MAX_MINOR_UNITS + 1).validate("value").is_err());
        assert!(eur(i64::MAX).validate("value").is_err());
        assert!(eur(-1).validate("value").is_err());
    }
}
