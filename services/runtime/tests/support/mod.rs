//! Shared by the Avro tests: the hand-written decoders against apache-avro's.

use callpulse_runtime::avro::AvroError;
use proptest::prelude::*;

/// The hand-written decoder's answer (`new`) to some bytes against
/// apache-avro's (`old`, `avro::reference`): the same record, or both a
/// refusal (of the same words, unless both found the bytes unreadable,
/// which they word differently). Where they differ otherwise, `new` must
/// have refused for one of the `stricter` reasons, never read a record
/// that apache-avro refused.
pub fn decoders_agree<T: PartialEq + std::fmt::Debug>(
    new: Result<T, AvroError>,
    old: Result<T, AvroError>,
    stricter: &[&str],
) -> Result<(), TestCaseError> {
    let unreadable = |err: &AvroError| matches!(err, AvroError::Avro(_) | AvroError::Field(_));
    match (new, old) {
        (Ok(new), Ok(old)) => prop_assert_eq!(new, old),
        (Ok(new), Err(old)) => {
            prop_assert!(false, "read {:?}, which apache-avro refused: {}", new, old)
        }
        (Err(new), old) => {
            let reason = new.to_string();
            let same = match &old {
                Ok(_) => false,
                Err(old) => (unreadable(&new) && unreadable(old)) || old.to_string() == reason,
            };
            prop_assert!(
                same || stricter.iter().any(|why| reason.contains(why)),
                "refused ({}) where apache-avro answered {:?}",
                reason,
                old
            );
        }
    }
    Ok(())
}
