//! The facts compliance needs, extracted from events: the stored (and replayed) unit of the
//! projection.
//!
//! Only what the rules look at is kept (no summaries, sentiments, revenue...), so an account's
//! history stays small, and each fact carries both of its clocks, so that any past instant can
//! be answered on either axis from the same history.

use keyplan_domain::events::EngagementRuleSet;
use keyplan_domain::values::{BuyingRole, Channel, Date, ReviewFrequency, Timestamp};
use keyplan_domain::AccountEvent;
use keyplan_projection::ProjectedEvent;
use serde::{Deserialize, Serialize};

/// The clocks of a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    /// Business time: when it happened. For an interaction its details' `occurred_at`, for
    /// everything else the event's `occurred_at`.
    pub bt: Timestamp,
    /// When Keyplan recorded it.
    pub rt: Timestamp,
    /// Global position: orders facts with equal business times (the later recorded wins).
    pub pos: u64,
}

impl Stamp {
    /// The order of facts about the same thing: business time, then position.
    pub fn key(&self) -> (Timestamp, u64) {
        (self.bt, self.pos)
    }
}

/// One compliance-relevant fact of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Fact {
    /// The account was registered (its name labels rollups).
    Registered { stamp: Stamp, name: String },
    /// A person joined the key account team.
    MemberAssigned {
        stamp: Stamp,
        person: String,
        name: String,
    },
    /// A person left the key account team.
    MemberUnassigned { stamp: Stamp, person: String },
    /// A stakeholder joined the decision-making unit with a buying role.
    StakeholderAdded {
        stamp: Stamp,
        stakeholder: String,
        name: String,
        role: BuyingRole,
    },
    /// A stakeholder's buying role changed.
    BuyingRoleChanged {
        stamp: Stamp,
        stakeholder: String,
        role: BuyingRole,
    },
    /// An engagement rule was set or redefined.
    RuleSet {
        stamp: Stamp,
        definition: EngagementRuleSet,
    },
    /// An engagement rule was retired.
    RuleRetired { stamp: Stamp, rule: String },
    /// An interaction was logged (`corrected: false`) or corrected; `stamp.bt` is the
    /// (corrected) occurred_at.
    Interaction {
        stamp: Stamp,
        interaction: String,
        corrected: bool,
        channel: Channel,
        stakeholders: Vec<String>,
        participants: Vec<String>,
    },
    /// An account plan was drafted.
    PlanDrafted {
        stamp: Stamp,
        plan: String,
        start: Date,
        end: Option<Date>,
        frequency: ReviewFrequency,
    },
    /// A review was scheduled, for a plan or not.
    ReviewScheduled {
        stamp: Stamp,
        review: String,
        plan: Option<String>,
    },
    /// A review was held (its outcome recorded). `stamp.bt` is the event's occurred_at (when
    /// the outcome was entered); the rules date the review by `held_on` instead.
    ReviewHeld {
        stamp: Stamp,
        review: String,
        held_on: Date,
    },
}

impl Fact {
    /// The fact an event contributes, if compliance cares about it.
    pub fn from_event(e: &ProjectedEvent) -> Option<Self> {
        let stamp = Stamp {
            bt: e.occurred_at,
            rt: e.recorded_at,
            pos: e.position,
        };
        Some(match &e.event {
            AccountEvent::AccountRegistered(r) => Fact::Registered {
                stamp,
                name: r.name.clone(),
            },
            AccountEvent::TeamMemberAssigned(m) => Fact::MemberAssigned {
                stamp,
                person: m.person_id.to_string(),
                name: m.name.clone(),
            },
            AccountEvent::TeamMemberUnassigned(m) => Fact::MemberUnassigned {
                stamp,
                person: m.person_id.to_string(),
            },
            AccountEvent::StakeholderAdded(s) => Fact::StakeholderAdded {
                stamp,
                stakeholder: s.stakeholder_id.to_string(),
                name: s.name.clone(),
                role: s.buying_role,
            },
            AccountEvent::StakeholderProfileChanged(c) => Fact::BuyingRoleChanged {
                stamp,
                stakeholder: c.stakeholder_id.to_string(),
                role: c.buying_role?,
            },
            AccountEvent::EngagementRuleSet(r) => Fact::RuleSet {
                stamp,
                definition: r.clone(),
            },
            AccountEvent::EngagementRuleRetired(r) => Fact::RuleRetired {
                stamp,
                rule: r.rule_id.to_string(),
            },
            AccountEvent::InteractionLogged(i) => {
                interaction(stamp, i.interaction_id.as_str(), false, &i.details)
            }
            AccountEvent::InteractionCorrected(i) => {
                interaction(stamp, i.interaction_id.as_str(), true, &i.details)
            }
            AccountEvent::PlanDrafted(p) => Fact::PlanDrafted {
                stamp,
                plan: p.plan_id.to_string(),
                start: p.period.start,
                end: p.period.end,
                frequency: p.review_frequency,
            },
            AccountEvent::ReviewScheduled(r) => Fact::ReviewScheduled {
                stamp,
                review: r.review_id.to_string(),
                plan: r.plan_id.as_ref().map(ToString::to_string),
            },
            AccountEvent::ReviewOutcomeRecorded(r) => Fact::ReviewHeld {
                stamp,
                review: r.review_id.to_string(),
                held_on: r.held_on,
            },
            _ => return None,
        })
    }
}

fn interaction(
    stamp: Stamp,
    id: &str,
    corrected: bool,
    d: &keyplan_domain::events::InteractionDetails,
) -> Fact {
    Fact::Interaction {
        stamp: Stamp {
            bt: d.occurred_at,
            ..stamp
        },
        interaction: id.to_owned(),
        corrected,
        channel: d.channel,
        stakeholders: d.stakeholders.iter().map(ToString::to_string).collect(),
        participants: d.participants.iter().map(ToString::to_string).collect(),
    }
}
