//! The primitives of Avro's binary encoding (Avro specification, "Binary
//! encoding") that callpulse's schemas use: zig-zag varint longs and ints,
//! booleans, length-prefixed strings and the block counts of arrays.
//! Pure: bytes in, values out, no schema and no I/O.
//!
//! Varints are read as apache-avro reads them: at most 10 bytes, and bits
//! of a 10th byte beyond the 64th are dropped; an 11th byte is an overflow.

use std::fmt;

/// What is wrong with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The input ends inside a value.
    Truncated,
    /// A varint of more than 10 bytes.
    Overflow,
    /// An int outside the 32-bit range.
    IntRange(i64),
    /// A negative length.
    NegativeLength(i64),
    /// A length or block count above the caller's limit.
    TooLong { len: u64, max: usize },
    /// A string that is not UTF-8.
    Utf8,
    /// A boolean byte other than 0 and 1.
    Bool(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("the message is cut short"),
            WireError::Overflow => f.write_str("a variable-length integer of more than 10 bytes"),
            WireError::IntRange(n) => write!(f, "{n} is out of range for an int"),
            WireError::NegativeLength(n) => write!(f, "a negative length ({n})"),
            WireError::TooLong { len, max } => {
                write!(f, "a length of {len} is more than the {max} allowed")
            }
            WireError::Utf8 => f.write_str("a string that is not UTF-8"),
            WireError::Bool(byte) => write!(f, "{byte} is not a boolean (0 or 1)"),
        }
    }
}

/// Reads values from the front of a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// The bytes not read yet.
    #[cfg(test)]
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.rest.len() >= 10 {
            WireError::Overflow
        } else {
            WireError::Truncated
        })
    }

    pub fn long(&mut self) -> Result<i64, WireError> {
        let zigzag = self.varint()?;
        Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
    }

    pub fn int(&mut self) -> Result<i32, WireError> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| WireError::IntRange(n))
    }

    pub fn boolean(&mut self) -> Result<bool, WireError> {
        let (&byte, rest) = self.rest.split_first().ok_or(WireError::Truncated)?;
        self.rest = rest;
        match byte {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(WireError::Bool(other)),
        }
    }

    /// A length prefix of at most `max`.
    fn length(&mut self, max: usize) -> Result<usize, WireError> {
        let n = self.long()?;
        let len = u64::try_from(n).map_err(|_| WireError::NegativeLength(n))?;
        checked_len(len, max)
    }

    /// A string of at most `max` bytes, borrowed from the input.
    pub fn string(&mut self, max: usize) -> Result<&'a str, WireError> {
        let len = self.length(max)?;
        if len > self.rest.len() {
            return Err(WireError::Truncated);
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(bytes).map_err(|_| WireError::Utf8)
    }

    /// The item count of the next block of an array: 0 at the end of the
    /// array. A negative count `-n` is followed by the block's size in bytes
    /// (which is read and not needed) and means `n` items.
    pub fn block_count(&mut self, max: usize) -> Result<usize, WireError> {
        let count = self.long()?;
        if count < 0 {
            self.long()?;
        }
        checked_len(count.unsigned_abs(), max)
    }
}

fn checked_len(len: u64, max: usize) -> Result<usize, WireError> {
    match usize::try_from(len) {
        Ok(len) if len <= max => Ok(len),
        _ => Err(WireError::TooLong { len, max }),
    }
}

pub fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut zigzag = ((n << 1) ^ (n >> 63)) as u64;
    while zigzag > 0x7f {
        out.push(zigzag as u8 | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

pub fn write_int(out: &mut Vec<u8>, n: i32) {
    write_long(out, i64::from(n));
}

pub fn write_boolean(out: &mut Vec<u8>, value: bool) {
    out.push(u8::from(value));
}

pub fn write_string(out: &mut Vec<u8>, text: &str) {
    // A `str` is never longer than `isize::MAX` bytes.
    write_long(out, text.len() as i64);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;
    use apache_avro::Schema;
    use proptest::prelude::*;

    fn long_bytes(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_long(&mut out, n);
        out
    }

    #[test]
    fn longs_are_zig_zag_varints() {
        let cases: [(i64, &[u8]); 9] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (8192, &[0x80, 0x80, 0x01]),
            (1_795_420_800_000, &[0x80, 0x90, 0xda, 0xf6, 0xc0, 0x68]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (n, bytes) in cases {
            assert_eq!(long_bytes(n), bytes, "{n}");
            let mut reader = Reader::new(bytes);
            assert_eq!(reader.long(), Ok(n));
            assert!(reader.rest().is_empty());
        }
    }

    #[test]
    fn a_varint_may_not_run_past_ten_bytes_or_the_input() {
        let eleven = [0x80; 10]
            .iter()
            .chain(&[0x01])
            .copied()
            .collect::<Vec<_>>();
        assert_eq!(Reader::new(&eleven).long(), Err(WireError::Overflow));
        assert_eq!(Reader::new(&[0x80; 9]).long(), Err(WireError::Truncated));
        assert_eq!(Reader::new(&[]).long(), Err(WireError::Truncated));
        assert_eq!(Reader::new(&[]).boolean(), Err(WireError::Truncated));
        // As apache-avro: bits of the 10th byte beyond the 64th are dropped.
        let wide = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(Reader::new(&wide).long(), Ok(i64::MAX));
    }

    #[test]
    fn ints_booleans_and_strings() {
        assert_eq!(
            Reader::new(&long_bytes(1 << 31)).int(),
            Err(WireError::IntRange(1 << 31))
        );
        assert_eq!(Reader::new(&long_bytes(-7)).int(), Ok(-7));
        assert_eq!(Reader::new(&[2]).boolean(), Err(WireError::Bool(2)));
        let mut out = Vec::new();
        write_boolean(&mut out, true);
        write_string(&mut out, "héllo");
        write_int(&mut out, -3);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.boolean(), Ok(true));
        assert_eq!(reader.string(6), Ok("héllo"));
        assert_eq!(reader.int(), Ok(-3));
        assert!(reader.rest().is_empty());
        assert_eq!(
            Reader::new(&out[1..]).string(5),
            Err(WireError::TooLong { len: 6, max: 5 })
        );
        assert_eq!(Reader::new(&out[1..5]).string(6), Err(WireError::Truncated));
        assert_eq!(
            Reader::new(&[0x04, 0xff, 0xfe]).string(6),
            Err(WireError::Utf8)
        );
        assert_eq!(
            Reader::new(&[0x03]).string(6),
            Err(WireError::NegativeLength(-2))
        );
    }

    #[test]
    fn block_counts_may_be_negative_with_a_size() {
        let mut reader = Reader::new(&[0x14, 0x07, 0x10, 0x00, 0x01]);
        assert_eq!(reader.block_count(10), Ok(10));
        // -4 items, 8 bytes.
        assert_eq!(reader.block_count(10), Ok(4));
        assert_eq!(reader.block_count(10), Ok(0));
        assert_eq!(reader.block_count(10), Err(WireError::Truncated));
        assert_eq!(
            Reader::new(&[0x16]).block_count(10),
            Err(WireError::TooLong { len: 11, max: 10 })
        );
        let min = long_bytes(i64::MIN);
        let min_with_size = [&min[..], &[0x00]].concat();
        assert!(matches!(
            Reader::new(&min_with_size).block_count(10),
            Err(WireError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn longs_and_ints_match_apache_avro(n in any::<i64>(), i in any::<i32>()) {
            let apache = apache_avro::to_avro_datum(&Schema::Long, Value::Long(n)).unwrap();
            prop_assert_eq!(&long_bytes(n), &apache);
            prop_assert_eq!(Reader::new(&apache).long(), Ok(n));
            let apache = apache_avro::to_avro_datum(&Schema::Int, Value::Int(i)).unwrap();
            let mut out = Vec::new();
            write_int(&mut out, i);
            prop_assert_eq!(&out, &apache);
            prop_assert_eq!(Reader::new(&apache).int(), Ok(i));
        }

        #[test]
        fn strings_match_apache_avro(text in "\\PC{0,40}") {
            let apache = apache_avro::to_avro_datum(&Schema::String, Value::String(text.clone())).unwrap();
            let mut out = Vec::new();
            write_string(&mut out, &text);
            prop_assert_eq!(&out, &apache);
            prop_assert_eq!(Reader::new(&apache).string(4096), Ok(text.as_str()));
        }

        #[test]
        fn any_bytes_read_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..24)) {
            let _ = Reader::new(&bytes).long();
            let _ = Reader::new(&bytes).int();
            let _ = Reader::new(&bytes).boolean();
            let _ = Reader::new(&bytes).string(8);
            let _ = Reader::new(&bytes).block_count(8);
        }
    }
}
