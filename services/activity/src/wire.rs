//! Domain values in their wire form, for the answers of this service.
//!
//! `keyplan-proto` keeps its enum conversions crate-private, so the few this service needs
//! are spelled out here; the matches are exhaustive, so a new domain value fails to compile
//! until it is mapped.

use std::collections::BTreeMap;

use keyplan_domain::values::{BuyingRole, Channel, Date, Money, OpportunityStage, Tier};
use keyplan_proto::pb;

/// The wire enum of a channel.
pub fn channel(c: Channel) -> pb::Channel {
    match c {
        Channel::InPerson => pb::Channel::InPerson,
        Channel::VideoCall => pb::Channel::VideoCall,
        Channel::PhoneCall => pb::Channel::PhoneCall,
        Channel::Email => pb::Channel::Email,
        Channel::SiteVisit => pb::Channel::SiteVisit,
        Channel::BusinessReview => pb::Channel::BusinessReview,
        Channel::Event => pb::Channel::Event,
    }
}

/// The wire enum of a buying role.
pub fn buying_role(r: BuyingRole) -> pb::BuyingRole {
    match r {
        BuyingRole::EconomicBuyer => pb::BuyingRole::EconomicBuyer,
        BuyingRole::TechnicalBuyer => pb::BuyingRole::TechnicalBuyer,
        BuyingRole::User => pb::BuyingRole::User,
        BuyingRole::Influencer => pb::BuyingRole::Influencer,
        BuyingRole::Gatekeeper => pb::BuyingRole::Gatekeeper,
        BuyingRole::Coach => pb::BuyingRole::Coach,
    }
}

/// The wire enum of a tier.
pub fn tier(t: Tier) -> pb::Tier {
    match t {
        Tier::Standard => pb::Tier::Standard,
        Tier::Key => pb::Tier::Key,
        Tier::Strategic => pb::Tier::Strategic,
    }
}

/// The wire enum of an opportunity stage.
pub fn stage(s: OpportunityStage) -> pb::OpportunityStage {
    match s {
        OpportunityStage::Identified => pb::OpportunityStage::Identified,
        OpportunityStage::Qualified => pb::OpportunityStage::Qualified,
        OpportunityStage::Proposal => pb::OpportunityStage::Proposal,
        OpportunityStage::Negotiation => pb::OpportunityStage::Negotiation,
    }
}

/// A calendar date, `YYYY-MM-DD`.
pub fn date(d: Date) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Amounts per currency (never added across currencies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Amounts(BTreeMap<String, i64>);

impl Amounts {
    /// Adds an amount to its currency's total.
    pub fn add(&mut self, money: &Money) {
        let total = self.0.entry(money.currency.clone()).or_default();
        *total = total.saturating_add(money.minor_units);
    }

    /// The total of one currency (0 if none).
    pub fn get(&self, currency: &str) -> i64 {
        self.0.get(currency).copied().unwrap_or(0)
    }

    /// The currencies present.
    pub fn currencies(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// One `Money` per currency, ordered by currency code.
    pub fn to_wire(&self) -> Vec<pb::Money> {
        self.0
            .iter()
            .map(|(currency, &minor_units)| pb::Money {
                currency: currency.clone(),
                minor_units,
            })
            .collect()
    }
}

/// `part * 10000 / whole`, rounded half up; `None` when `whole` is not positive.
pub fn basis_points(part: i64, whole: i64) -> Option<u64> {
    if whole <= 0 {
        return None;
    }
    let part = i128::from(part.max(0));
    let whole = i128::from(whole);
    let rounded = (part * 20_000 + whole) / (2 * whole);
    Some(u64::try_from(rounded).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_round_half_up() {
        assert_eq!(basis_points(1, 3), Some(3333)); // 3333.33
        assert_eq!(basis_points(2, 3), Some(6667)); // 6666.67
        assert_eq!(basis_points(1, 8), Some(1250)); // exact
        assert_eq!(basis_points(1, 20_000), Some(1)); // 0.5 -> 1
        assert_eq!(basis_points(5, 0), None);
    }
}
