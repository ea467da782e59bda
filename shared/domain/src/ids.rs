//! Identifiers used across the domain.
//!
//! All ids are short, client-chosen strings (`[A-Za-z0-9._:-]{1,64}`), so that a client can
//! name an entity before it exists (and retry the command that creates it without creating a
//! twin), and so that ids stay readable in logs, NATS subjects and audit exports.
//! Tenant and account ids may not contain '.', because each is one token of the NATS subject
//! `keyplan.<tenant>.<account>.<event type>` that events are published on.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::DomainError;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Checks an id's syntax; `what` names the field in the error.
pub fn validate_id(what: &'static str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::invalid(what, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(DomainError::invalid(
            what,
            format!(
                "must be at most {MAX_ID_LEN} characters, got {}",
                value.len()
            ),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(DomainError::invalid(
            what,
            format!(
                "may only contain letters, digits, '.', '_', '-' and ':', found {c:?} in {}",
                crate::text::quote(value)
            ),
        ));
    }
    Ok(())
}

/// Checks the syntax of an id that is also a NATS subject token (tenant, account): as
/// [`validate_id`], without '.'.
pub fn validate_subject_token_id(what: &'static str, value: &str) -> Result<(), DomainError> {
    validate_id(what, value)?;
    if value.contains('.') {
        return Err(DomainError::invalid(
            what,
            format!(
                "may only contain letters, digits, '_', '-' and ':' (no '.'), got {}",
                crate::text::quote(value)
            ),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        string_id!($(#[$doc])* $name, $what, validate_id);
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $validate:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id.
            pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
                let value = value.into();
                $validate($what, &value)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The supplier organisation that owns a set of key accounts (the tenant).
    TenantId, "tenant", validate_subject_token_id
);
string_id!(
    /// A key account (a customer); one event stream per account.
    AccountId, "account_id", validate_subject_token_id
);
string_id!(
    /// A person on the supplier side (a key account team member, an interaction participant).
    PersonId, "person_id"
);
string_id!(
    /// A person on the customer side, in the decision-making unit.
    StakeholderId, "stakeholder_id"
);
string_id!(
    /// An account plan (one per plan period).
    PlanId, "plan_id"
);
string_id!(
    /// A measurable goal in an account plan.
    ObjectiveId, "objective_id"
);
string_id!(
    /// A sales opportunity within the account.
    OpportunityId, "opportunity_id"
);
string_id!(
    /// A concrete action with an owner and a due date.
    ActionItemId, "action_item_id"
);
string_id!(
    /// An engagement rule ("meet the economic buyer every 30 days").
    RuleId, "rule_id"
);
string_id!(
    /// A logged interaction (meeting, call, email...).
    InteractionId, "interaction_id"
);
string_id!(
    /// A scheduled review (internal plan review, QBR, executive review).
    ReviewId, "review_id"
);
