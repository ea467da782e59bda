//! Conversions of the scalar building blocks shared by every message: ids, dates, instants,
//! money, the closed vocabularies (enums) and small integers.
//!
//! Every wire -> domain helper takes the wire field's name, so that an error tells the client
//! exactly which field to fix.

use keyplan_domain::ids::*;
use keyplan_domain::values::{self as dv, Date, Timestamp};
use keyplan_domain::DomainError;

use crate::pb;

// ---------------------------------------------------------------- presence

/// A sub-message that the domain requires but proto3 makes optional.
pub(crate) fn required<T>(field: &'static str, value: Option<T>) -> Result<T, DomainError> {
    value.ok_or_else(|| DomainError::invalid(field, "is required"))
}

// ---------------------------------------------------------------- ids

/// An id type of the domain, parsed from its wire string.
pub(crate) trait WireId: Sized {
    /// Parses and validates the id (the error names the id type's default field).
    fn parse_wire(value: String) -> Result<Self, DomainError>;
}

macro_rules! wire_ids {
    ($($id:ident),+ $(,)?) => {
        $(
            impl WireId for $id {
                fn parse_wire(value: String) -> Result<Self, DomainError> {
                    $id::parse(value)
                }
            }
        )+
    };
}

wire_ids!(
    TenantId,
    AccountId,
    PersonId,
    StakeholderId,
    PlanId,
    ObjectiveId,
    OpportunityId,
    ActionItemId,
    RuleId,
    InteractionId,
    ReviewId,
);

/// Names the wire field in an `InvalidArgument`.
///
/// `XxxId::parse` names the id *type* (`person_id`), but on the wire a person id appears as
/// `owner`, `assessed_by`, `participants`...: the client needs the field it actually sent.
fn in_field(error: DomainError, field: &'static str) -> DomainError {
    match error {
        DomainError::InvalidArgument { reason, .. } => {
            DomainError::InvalidArgument { field, reason }
        }
        other => other,
    }
}

/// A required id.
pub(crate) fn id<T: WireId>(field: &'static str, value: String) -> Result<T, DomainError> {
    T::parse_wire(value).map_err(|e| in_field(e, field))
}

/// An optional id: the empty string means absent (an empty id is never valid, so nothing is
/// lost, and clients need no wrapper type).
pub(crate) fn optional_id<T: WireId>(
    field: &'static str,
    value: String,
) -> Result<Option<T>, DomainError> {
    if value.is_empty() {
        Ok(None)
    } else {
        id(field, value).map(Some)
    }
}

/// A list of ids; every element must be valid.
pub(crate) fn ids<T: WireId>(
    field: &'static str,
    values: Vec<String>,
) -> Result<Vec<T>, DomainError> {
    values.into_iter().map(|v| id(field, v)).collect()
}

/// The wire form of an optional id: empty when absent.
pub(crate) fn optional_id_to_wire<T: std::fmt::Display>(value: Option<&T>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

/// The wire form of a list of ids.
pub(crate) fn ids_to_wire<T: std::fmt::Display>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------- dates

/// A required calendar date, `YYYY-MM-DD`.
pub(crate) fn date(field: &'static str, value: &str) -> Result<Date, DomainError> {
    dv::parse_date(field, value)
}

/// An optional calendar date: the empty string means absent (as for ids).
pub(crate) fn optional_date(field: &'static str, value: &str) -> Result<Option<Date>, DomainError> {
    if value.is_empty() {
        Ok(None)
    } else {
        date(field, value).map(Some)
    }
}

/// The wire form of a date, `YYYY-MM-DD` (the exact format [`date`] accepts).
pub fn date_to_wire(value: Date) -> String {
    value.format("%Y-%m-%d").to_string()
}

/// The wire form of an optional date: empty when absent.
pub fn optional_date_to_wire(value: Option<Date>) -> String {
    value.map(date_to_wire).unwrap_or_default()
}

// ---------------------------------------------------------------- instants

/// Earliest instant a `google.protobuf.Timestamp` may hold: 0001-01-01T00:00:00Z.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Latest instant a `google.protobuf.Timestamp` may hold: 9999-12-31T23:59:59Z.
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// The wire form of an instant.
pub fn timestamp_to_proto(value: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = value.to_parts();
    prost_types::Timestamp { seconds, nanos }
}

/// An instant from the wire, leniently: never fails.
///
/// Out-of-range values (nanos outside `0..=999_999_999`, absurd seconds) are not rejected but
/// saturate, which keeps this usable with `Option::map` for server-side defaults. To refuse
/// such values with an error naming the field, use [`timestamp_from_proto_checked`]. Digits
/// finer than a microsecond are dropped: the domain stores microseconds, so every instant it
/// produced round-trips exactly.
pub fn timestamp_from_proto(value: prost_types::Timestamp) -> Timestamp {
    // Same arithmetic as `Timestamp::from_parts`, but saturating all the way (that one can
    // overflow on the addition for seconds near the i64 limits).
    Timestamp(
        value
            .seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(value.nanos) / 1_000),
    )
}

/// An instant from the wire, validated; `field` names it in the error.
///
/// Rejects what `google.protobuf.Timestamp` itself declares invalid: nanos outside
/// `0..=999_999_999` and instants outside years 1 to 9999 (which also keeps the microsecond
/// count far from overflow). Used for every instant inside a command's payload; services
/// should use it for request-level instants such as `ExecuteRequest.occurred_at` too.
pub fn timestamp_from_proto_checked(
    field: &'static str,
    value: &prost_types::Timestamp,
) -> Result<Timestamp, DomainError> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(DomainError::invalid(
            field,
            format!("nanos must be between 0 and 999999999, got {}", value.nanos),
        ));
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&value.seconds) {
        return Err(DomainError::invalid(
            field,
            format!(
                "must be between years 1 and 9999, got {} seconds",
                value.seconds
            ),
        ));
    }
    Ok(Timestamp::from_parts(value.seconds, value.nanos))
}

/// A required instant.
pub(crate) fn required_timestamp(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Timestamp, DomainError> {
    timestamp_from_proto_checked(field, &required(field, value)?)
}

// ---------------------------------------------------------------- money

/// A required amount. Currency syntax and sign are business rules
/// ([`dv::Money::validate`]), checked by the domain.
pub(crate) fn money(
    field: &'static str,
    value: Option<pb::Money>,
) -> Result<dv::Money, DomainError> {
    let pb::Money {
        currency,
        minor_units,
    } = required(field, value)?;
    Ok(dv::Money {
        currency,
        minor_units,
    })
}

/// The wire form of an amount.
pub(crate) fn money_to_wire(value: &dv::Money) -> Option<pb::Money> {
    Some(pb::Money {
        currency: value.currency.clone(),
        minor_units: value.minor_units,
    })
}

// ---------------------------------------------------------------- small integers

/// A `u8` of the domain, carried as `uint32` (protobuf has no 8-bit type).
pub(crate) fn small(field: &'static str, value: u32) -> Result<u8, DomainError> {
    u8::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("must be at most 255, got {value}")))
}

// ---------------------------------------------------------------- enums

/// A closed vocabulary of the domain and its protobuf enum.
///
/// On the wire an enum is an `i32` that may hold `*_UNSPECIFIED` (the proto3 default, i.e. a
/// field the client forgot) or a number this build does not know (a newer client): both are
/// refused, listing the accepted names. Public so that the read models' services answer with
/// the same mapping the commands are read with.
pub trait WireEnum: Sized + Copy {
    /// The generated protobuf enum.
    type Wire;
    /// The protobuf value (e.g. for its `as_str_name`).
    fn to_pb(self) -> Self::Wire;
    /// The wire number.
    fn to_wire(self) -> i32;
    /// The domain value; `field` names the wire field in the error.
    fn from_wire(field: &'static str, value: i32) -> Result<Self, DomainError>;
}

/// The error for an unset or unknown enum value.
fn not_one_of(
    field: &'static str,
    value: i32,
    unspecified: &str,
    accepted: &[&str],
) -> DomainError {
    let got = if value == 0 {
        format!("{unspecified} (unset)")
    } else {
        value.to_string()
    };
    DomainError::invalid(
        field,
        format!("must be one of: {}; got {got}", accepted.join(", ")),
    )
}

/// Pairs a domain vocabulary with its protobuf enum. The variant names are the same on both
/// sides (prost strips the `TIER_` style prefixes), and both matches are exhaustive, so
/// adding a value on one side only fails to compile.
macro_rules! wire_enum {
    ($domain:ident => $wire:ident { $($variant:ident),+ $(,)? }) => {
        impl WireEnum for dv::$domain {
            type Wire = pb::$wire;

            fn to_pb(self) -> pb::$wire {
                match self {
                    $(dv::$domain::$variant => pb::$wire::$variant),+
                }
            }

            fn to_wire(self) -> i32 {
                i32::from(self.to_pb())
            }

            fn from_wire(field: &'static str, value: i32) -> Result<Self, DomainError> {
                match pb::$wire::try_from(value) {
                    $(Ok(pb::$wire::$variant) => Ok(dv::$domain::$variant),)+
                    Ok(pb::$wire::Unspecified) | Err(_) => Err(not_one_of(
                        field,
                        value,
                        pb::$wire::Unspecified.as_str_name(),
                        &[$(pb::$wire::$variant.as_str_name()),+],
                    )),
                }
            }
        }
    };
}

wire_enum!(Tier => Tier { Standard, Key, Strategic });
wire_enum!(TeamRole => TeamRole {
    KeyAccountManager,
    ExecutiveSponsor,
    Sales,
    Operations,
    SupplyChain,
    Service,
    Other,
});
wire_enum!(PlanPeriodKind => PlanPeriodKind { CalendarYear, HalfYear, Rolling12Months, Perpetual });
wire_enum!(PlanSection => PlanSection {
    AccountOverview,
    CustomerLandscape,
    Competitors,
    RevenueSnapshot,
    Risks,
    Strategy,
});
wire_enum!(ObjectiveStatus => ObjectiveStatus {
    NotStarted,
    OnTrack,
    AtRisk,
    OffTrack,
    Achieved,
    Abandoned,
});
wire_enum!(OpportunityStage => OpportunityStage { Identified, Qualified, Proposal, Negotiation });
wire_enum!(BuyingRole => BuyingRole {
    EconomicBuyer,
    TechnicalBuyer,
    User,
    Influencer,
    Gatekeeper,
    Coach,
});
wire_enum!(Attitude => Attitude { Champion, Supporter, Neutral, Critic, Blocker });
wire_enum!(Channel => Channel {
    InPerson,
    VideoCall,
    PhoneCall,
    Email,
    SiteVisit,
    BusinessReview,
    Event,
});
wire_enum!(Sentiment => Sentiment { VeryNegative, Negative, Neutral, Positive, VeryPositive });
wire_enum!(ReviewKind => ReviewKind { InternalPlanReview, QuarterlyBusinessReview, Executive });
wire_enum!(ReviewOutcome => ReviewOutcome { Approved, ApprovedWithChanges, Rejected, Escalated });
wire_enum!(HealthRating => HealthRating { Green, Amber, Red });
wire_enum!(ReviewFrequency => ReviewFrequency { Monthly, Quarterly, HalfYearly, Yearly });

/// A required enum value.
pub(crate) fn enumeration<E: WireEnum>(field: &'static str, value: i32) -> Result<E, DomainError> {
    E::from_wire(field, value)
}

/// An optional enum value (proto3 `optional`): absent is `None`, present must be valid.
pub(crate) fn optional_enumeration<E: WireEnum>(
    field: &'static str,
    value: Option<i32>,
) -> Result<Option<E>, DomainError> {
    value.map(|v| E::from_wire(field, v)).transpose()
}
