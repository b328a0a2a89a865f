//! The practices simulated: read from an organisations CSV (docs/organisations.md),
//! each with a synthetic registered list size derived from its code.

use anyhow::{bail, Context, Result};

/// One simulated practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practice {
    /// ODS code, e.g. `A81001`.
    pub code: String,
    /// ICB code, e.g. `QHM` (empty when unknown).
    pub icb: String,
    /// Registered patients: synthetic, deterministic from the code ([`list_size`]).
    pub list_size: u32,
}

impl Practice {
    pub fn new(code: impl Into<String>, icb: impl Into<String>) -> Practice {
        let code = code.into();
        Practice {
            list_size: list_size(&code),
            code,
            icb: icb.into(),
        }
    }
}

/// A synthetic registered list size for a practice, the same for the same
/// code on every run: from 3,000 to 23,000 patients, skewed towards small
/// practices (mean about 10,100, the English mean of roughly 63 M patients
/// over 6,200 practices), and one practice in 30 a "super-practice" of
/// 1.8 times that.
pub fn list_size(code: &str) -> u32 {
    let u = unit(fnv1a(code.as_bytes()));
    let v = unit(splitmix(fnv1a(code.as_bytes()) ^ 0x5eed));
    let base = 3_000.0 + 20_000.0 * u.powf(1.8);
    let size = if v < 1.0 / 30.0 { base * 1.8 } else { base };
    size.round() as u32
}

/// The first `limit` open practices of an organisations CSV: the callpulse /
/// `gp-reg-pat-prac-map` format with a header (`PRACTICE_CODE`, `ICB_CODE`,
/// optional `CLOSE_DATE`), or ODS `epraccur.csv` without one (column 1 the
/// code, 4 the ICB, 12 the close date, 13 the status: `A` active).
pub fn parse_organisations(text: &str, limit: Option<usize>) -> Result<Vec<Practice>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        bail!("the organisations file is empty");
    };
    let first_fields = split_csv_line(first);
    let header = first_fields
        .iter()
        .any(|f| f.trim().eq_ignore_ascii_case("PRACTICE_CODE"));
    let (code_col, icb_col, close_col, status_col) = if header {
        let find = |name: &str| {
            first_fields.iter().position(|f| {
                f.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        let code = find("PRACTICE_CODE").context("no PRACTICE_CODE column")?;
        let icb = find("ICB_CODE").context("no ICB_CODE column")?;
        (code, icb, find("CLOSE_DATE"), None)
    } else {
        (0, 3, Some(11), Some(12))
    };
    let rows: Box<dyn Iterator<Item = &str>> = if header {
        Box::new(lines)
    } else {
        Box::new(std::iter::once(first).chain(lines))
    };
    let limit = limit.unwrap_or(usize::MAX);
    let mut practices = Vec::new();
    for row in rows {
        if practices.len() >= limit {
            break;
        }
        let fields = split_csv_line(row);
        let get = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
        let code = get(code_col);
        if !callpulse_core::event::is_practice_code(code) {
            continue;
        }
        if close_col.is_some_and(|c| !get(c).is_empty()) {
            continue;
        }
        if status_col.is_some_and(|c| !matches!(get(c), "" | "A")) {
            continue;
        }
        practices.push(Practice::new(code, get(icb_col)));
    }
    if practices.is_empty() {
        bail!("the organisations file holds no open practice");
    }
    Ok(practices)
}

/// `n` practices spread evenly through `practices` (every ICB represented
/// when `n` is large enough), in their order; all of them when `n` is larger.
pub fn spread(practices: Vec<Practice>, n: usize) -> Vec<Practice> {
    let len = practices.len();
    if n >= len {
        return practices;
    }
    practices
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (i * n) % len < n)
        .map(|(_, p)| p)
        .collect()
}

/// Practices `A81001`, `A81002`, ... in no known ICB, for when no
/// organisations file is at hand.
pub fn synthetic_practices(n: usize) -> Vec<Practice> {
    (0..n)
        .map(|i| Practice::new(crate::practice_code(i), ""))
        .collect()
}

/// Fields of one CSV line; double quotes group and `""` escapes a quote.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from a hash.
pub(crate) fn unit(hash: u64) -> f64 {
    (splitmix(hash) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_callpulse_format_skipping_closed_practices() {
        let text = "PRACTICE_CODE,PRACTICE_NAME,ICB_CODE,CLOSE_DATE\n\
                    A81001,\"Larch, Road\",QHM,\n\
                    A81002,Mill,QHM,2020-01-01\n\
                    B82003,Oak,QYG,\n";
        let practices = parse_organisations(text, None).unwrap();
        let codes: Vec<_> = practices
            .iter()
            .map(|p| (p.code.as_str(), p.icb.as_str()))
            .collect();
        assert_eq!(codes, [("A81001", "QHM"), ("B82003", "QYG")]);
        assert_eq!(parse_organisations(text, Some(1)).unwrap().len(), 1);
    }

    #[test]
    fn spreads_evenly() {
        let all = synthetic_practices(100);
        let some = spread(all.clone(), 10);
        assert_eq!(some.len(), 10);
        assert_eq!(some[1].code, all[10].code);
        assert_eq!(spread(all.clone(), 500), all);
    }

    #[test]
    fn reads_epraccur() {
        let text = "A81001,NAME,Y63,QHM,a,b,c,d,e,TS18 1HU,19740401,,A,x,00K\n\
                    A81002,NAME,Y63,QHM,a,b,c,d,e,TS18 1HU,19740401,20200101,C,x,00K\n";
        let practices = parse_organisations(text, None).unwrap();
        assert_eq!(practices.len(), 1);
        assert_eq!(practices[0].icb, "QHM");
    }

    #[test]
    fn list_sizes_are_stable_and_plausible() {
        assert_eq!(list_size("A81001"), list_size("A81001"));
        let sizes: Vec<u32> = (0..5_000)
            .map(|i| list_size(&crate::practice_code(i)))
            .collect();
        let mean = sizes.iter().map(|&s| f64::from(s)).sum::<f64>() / sizes.len() as f64;
        assert!((9_000.0..11_500.0).contains(&mean), "{mean}");
        assert!(sizes.iter().all(|&s| (3_000..=41_400).contains(&s)));
    }
}
