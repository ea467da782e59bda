//! Value objects: the protobuf timestamp conversion.

use keyplan_domain::values::Timestamp;

#[test]
fn timestamp_parts_round_trip() {
    for micros in [0, 1, -1, 1_749_988_800_123_456, -946_684_800_000_001] {
        let (seconds, nanos) = Timestamp(micros).to_parts();
        assert!((0..1_000_000_000).contains(&nanos));
        assert_eq!(Timestamp::from_parts(seconds, nanos), Timestamp(micros));
    }
}

#[test]
fn absurd_client_timestamps_saturate_instead_of_overflowing() {
    assert_eq!(
        Timestamp::from_parts(i64::MAX, 999_999_999),
        Timestamp(i64::MAX)
    );
    assert_eq!(
        Timestamp::from_parts(i64::MIN, -999_999_999),
        Timestamp(i64::MIN)
    );
}
