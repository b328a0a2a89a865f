//! Breaking text files the ways real files break, for the fuzz tests of
//! every crate that parses an operator's or a sender's file (shared with
//! `#[path]`: the crates have no test-support crate in common).
//!
//! Positions are fractions of the text, so one mutation fits any file.

use proptest::prelude::*;

/// A way a real file gets broken; positions are fractions of the text.
#[derive(Debug, Clone)]
pub enum Mutation {
    Truncate(f64),
    FlipBit(f64, u8),
    Insert(f64, String),
    Delete(f64, usize),
    RepeatLine(f64),
    /// The value after the n-th `:`, `=` or `,` (a JSON member, a TOML
    /// key, a CSV field).
    ReplaceValue(f64, String),
}

/// Values that break parsers: wrong types, extreme numbers and dates,
/// long and odd strings, deep nesting.
pub fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1e999".to_string()),
        Just("nan".to_string()),
        Just("\"\"".to_string()),
        Just("\"+262143-12-31\"".to_string()),
        Just("\"-262144-01-01\"".to_string()),
        Just("\"2026-02-30\"".to_string()),
        Just("\"9999-12-31T23:59:59.999Z\"".to_string()),
        Just("\"0000-01-01T00:00:00Z\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        (1usize..200).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth))),
        (1usize..20_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        "\\PC{0,20}",
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Mutation::Truncate),
        (at.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (at.clone(), "\\PC{1,8}|\n|\"|\\[|\\{|,|=|\u{feff}")
            .prop_map(|(at, text)| Mutation::Insert(at, text)),
        (at.clone(), 1usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        at.clone().prop_map(Mutation::RepeatLine),
        (at, hostile_value()).prop_map(|(at, value)| Mutation::ReplaceValue(at, value)),
    ]
}

fn index(fraction: f64, len: usize) -> usize {
    ((fraction * len as f64) as usize).min(len.saturating_sub(1))
}

/// Applies `mutation` to the bytes of `text`; broken UTF-8 is made whole
/// again with replacement characters, as a reader of text would.
pub fn apply(mutation: &Mutation, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    match mutation {
        Mutation::Truncate(at) => bytes.truncate(index(*at, bytes.len() + 1)),
        Mutation::FlipBit(at, bit) if !bytes.is_empty() => {
            let i = index(*at, bytes.len());
            bytes[i] ^= 1 << bit;
        }
        Mutation::Insert(at, inserted) => {
            let i = index(*at, bytes.len() + 1);
            bytes.splice(i..i, inserted.bytes());
        }
        Mutation::Delete(at, len) if !bytes.is_empty() => {
            let i = index(*at, bytes.len());
            bytes.drain(i..(i + len).min(bytes.len()));
        }
        Mutation::RepeatLine(at) => {
            let lines: Vec<&str> = text.split('\n').collect();
            let i = index(*at, lines.len());
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            return out.join("\n");
        }
        Mutation::ReplaceValue(at, value) => {
            let separators: Vec<usize> = text
                .match_indices([':', '=', ','])
                .map(|(i, _)| i)
                .collect();
            if separators.is_empty() {
                return text.to_string();
            }
            let start = separators[index(*at, separators.len())] + 1;
            let end = text[start..]
                .find([',', '\n', '}'])
                .map_or(text.len(), |n| start + n);
            return format!("{}{value}{}", &text[..start], &text[end..]);
        }
        Mutation::FlipBit(..) | Mutation::Delete(..) => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn mutated(text: &str, mutations: &[Mutation]) -> String {
    mutations
        .iter()
        .fold(text.to_string(), |text, mutation| apply(mutation, &text))
}
