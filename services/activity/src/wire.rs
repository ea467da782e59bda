//! Domain values in their wire form, for the answers of this service (enums and dates use
//! `keyplan_proto::convert`, the mapping commands are read with).

use std::collections::BTreeMap;

use keyplan_domain::values::Money;
use keyplan_proto::pb;

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
