//! Practice ODS codes packed into a number: the engine keys every map by
//! practice, and a `u32` hashes and compares faster than a string.

use crate::event::is_practice_code;

/// `A81001` as `('A' - 'A') * 100_000 + 81_001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PracticeId(u32);

impl PracticeId {
    pub fn from_code(code: &str) -> Option<PracticeId> {
        if !is_practice_code(code) {
            return None;
        }
        let bytes = code.as_bytes();
        let digits = bytes[1..]
            .iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
        Some(PracticeId(u32::from(bytes[0] - b'A') * 100_000 + digits))
    }

    /// The packed number: below 2^22 (`Z99999` is 2,599,999).
    pub fn as_u32(self) -> u32 {
        self.0
    }

    pub fn to_code(self) -> String {
        let letter = char::from(b'A' + (self.0 / 100_000) as u8);
        format!("{letter}{:05}", self.0 % 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        for code in ["A81001", "Z99999", "A00000", "P82005"] {
            assert_eq!(PracticeId::from_code(code).unwrap().to_code(), code);
        }
        assert!(PracticeId::from_code("a81001").is_none());
    }
}
