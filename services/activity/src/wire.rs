//! Domain values in their wire form, for the answers of this service (enums and dates use
//! `keyplan_proto::convert`, the mapping commands are read with).

use std::collections::BTreeMap;

use keyplan_domain::values::Money;
use keyplan_proto::pb;

use crate::error::ActivityError;

/// Amounts per currency (never added across currencies), summed in `i128`: a command's
/// amount is at most 10^15 minor units (`Money::MAX_MINOR_UNITS`), so a sum cannot wrap, and
/// one that does not fit the wire's `int64` is reported ([`to_i64`]) rather than saturated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Amounts(BTreeMap<String, i128>);

impl Amounts {
    /// Adds an amount to its currency's total.
    pub fn add(&mut self, money: &Money) {
        let total = self.0.entry(money.currency.clone()).or_default();
        *total += i128::from(money.minor_units);
    }

    /// The total of one currency (0 if none).
    pub fn get(&self, currency: &str) -> i128 {
        self.0.get(currency).copied().unwrap_or(0)
    }

    /// The currencies present.
    pub fn currencies(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// One `Money` per currency, ordered by currency code.
    pub fn to_wire(&self) -> Result<Vec<pb::Money>, ActivityError> {
        self.0
            .iter()
            .map(|(currency, &total)| {
                Ok(pb::Money {
                    currency: currency.clone(),
                    minor_units: to_i64(currency, total)?,
                })
            })
            .collect()
    }
}

/// A sum of amounts as the wire's `int64`, or `OUT_OF_RANGE` naming the currency.
pub fn to_i64(currency: &str, total: i128) -> Result<i64, ActivityError> {
    i64::try_from(total).map_err(|_| {
        ActivityError::OutOfRange(format!(
            "the {} total ({total} minor units) does not fit the answer's int64",
            keyplan_domain::text::quote(currency)
        ))
    })
}

/// `part * 10000 / whole`, rounded half up; `None` when `whole` is not positive or the
/// result does not fit a `u64` (never a saturated value).
pub fn basis_points(part: i128, whole: i128) -> Option<u64> {
    if whole <= 0 {
        return None;
    }
    let part = part.max(0);
    let rounded = part
        .checked_mul(20_000)?
        .checked_add(whole)?
        .checked_div(whole.checked_mul(2)?)?;
    u64::try_from(rounded).ok()
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
        // Extremes give an exact value or none, never a saturated one.
        assert_eq!(
            basis_points(1_000_000_000_000_000, 1),
            Some(10_000_000_000_000_000_000)
        );
        assert_eq!(basis_points(i128::from(i64::MAX) * 3, 1), None);
        assert_eq!(basis_points(i128::MAX, 1), None);
    }

    #[test]
    fn sums_never_saturate() {
        let mut amounts = Amounts::default();
        let max = Money {
            currency: "EUR".into(),
            minor_units: i64::MAX,
        };
        for _ in 0..3 {
            amounts.add(&max);
        }
        assert_eq!(amounts.get("EUR"), 3 * i128::from(i64::MAX));
        assert!(matches!(
            amounts.to_wire(),
            Err(ActivityError::OutOfRange(_))
        ));
    }
}
