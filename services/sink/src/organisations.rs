//! Organisations: GP practice -> PCN -> sub-ICB location -> ICB -> NHS
//! England region, read from a CSV and loaded into ClickHouse's
//! `organisations` table (schemas/clickhouse/002_organisations.sql).
//!
//! Two headers are accepted, told apart by the header line (column order is
//! free, names are case-insensitive):
//! - NHS Digital's "Patients Registered at a GP Practice" mapping file
//!   (`gp-reg-pat-prac-map`): no dates, so every practice is open;
//! - callpulse's own format: the same columns plus `OPEN_DATE` and
//!   `CLOSE_DATE` (`YYYY-MM-DD` or `YYYYMMDD`, empty = none).
//!
//! The ONS codes and `SUPPLIER_NAME` are optional and not stored; other
//! unknown columns are ignored. Parsing is pure: it reports every bad row
//! with its line number and never panics. The format is in
//! docs/organisations.md; [`synthetic`] generates the shipped file.

pub mod synthetic;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Read;

use anyhow::{Context, Result};
use callpulse_runtime::Config;
use chrono::NaiveDate;
use serde::Serialize;
use thiserror::Error;

/// The columns of NHS Digital's `gp-reg-pat-prac-map`, in its order.
pub const NHS_DIGITAL_COLUMNS: [&str; 15] = [
    "PRACTICE_CODE",
    "PRACTICE_NAME",
    "PRACTICE_POSTCODE",
    "PCN_CODE",
    "PCN_NAME",
    "ONS_SUB_ICB_LOCATION_CODE",
    "SUB_ICB_LOCATION_CODE",
    "SUB_ICB_LOCATION_NAME",
    "ONS_ICB_CODE",
    "ICB_CODE",
    "ICB_NAME",
    "ONS_COMM_REGION_CODE",
    "COMM_REGION_CODE",
    "COMM_REGION_NAME",
    "SUPPLIER_NAME",
];

/// The two columns callpulse's format adds after [`NHS_DIGITAL_COLUMNS`].
pub const DATE_COLUMNS: [&str; 2] = ["OPEN_DATE", "CLOSE_DATE"];

/// Columns that must be present in either format (the rest are optional).
const REQUIRED_COLUMNS: [&str; 11] = [
    "PRACTICE_CODE",
    "PRACTICE_NAME",
    "PRACTICE_POSTCODE",
    "PCN_CODE",
    "PCN_NAME",
    "SUB_ICB_LOCATION_CODE",
    "SUB_ICB_LOCATION_NAME",
    "ICB_CODE",
    "ICB_NAME",
    "COMM_REGION_CODE",
    "COMM_REGION_NAME",
];

/// The header a file was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NHS Digital's `gp-reg-pat-prac-map`: no dates.
    NhsDigital,
    /// callpulse's format: the mapping file's columns plus OPEN_DATE and CLOSE_DATE.
    Callpulse,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::NhsDigital => "NHS Digital gp-reg-pat-prac-map format",
            Format::Callpulse => "callpulse format",
        })
    }
}

/// One practice and the organisations above it. Codes are upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practice {
    pub code: String,
    pub name: String,
    pub postcode: String,
    /// Empty when the practice is in no PCN.
    pub pcn_code: String,
    pub pcn_name: String,
    pub sub_icb_code: String,
    pub sub_icb_name: String,
    pub icb_code: String,
    pub icb_name: String,
    pub region_code: String,
    pub region_name: String,
    pub open_date: Option<NaiveDate>,
    pub close_date: Option<NaiveDate>,
}

/// The file cannot be read, or its header cannot be used: nothing is loaded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FileError {
    #[error("reading: {0}")]
    Read(String),
    #[error("the file is empty: expected a header line (see docs/organisations.md)")]
    Empty,
    #[error("line 1: unreadable header: {0}")]
    Unreadable(String),
    #[error("line 1: no column {0}: expected the header of NHS Digital's gp-reg-pat-prac-map, or callpulse's (the same plus OPEN_DATE and CLOSE_DATE); see docs/organisations.md")]
    MissingColumn(&'static str),
    #[error("line 1: column {0} appears more than once")]
    DuplicateColumn(String),
}

/// A row that cannot be loaded, with the line it starts on (the header is line 1).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct RowError {
    pub line: u64,
    pub problem: Problem,
}

/// What is wrong with a row.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Problem {
    #[error("unreadable: {0}")]
    Unreadable(String),
    #[error("{found} fields, but the header has {expected}")]
    FieldCount { found: usize, expected: usize },
    #[error("{column} is empty")]
    Missing { column: &'static str },
    #[error("{column} `{value}` is not {expected}")]
    InvalidCode {
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{column} `{value}` is not a date from 1970-01-01 to 2105-12-31 (YYYY-MM-DD or YYYYMMDD)"
    )]
    InvalidDate { column: &'static str, value: String },
    #[error("CLOSE_DATE {close} is before OPEN_DATE {open}")]
    CloseBeforeOpen { open: NaiveDate, close: NaiveDate },
    #[error("practice {code} is already on line {first_line}")]
    DuplicatePractice { code: String, first_line: u64 },
    #[error("{level} {code} is under {parent} here but under {first_parent} on line {first_line}")]
    ConflictingParent {
        level: &'static str,
        code: String,
        parent: String,
        first_parent: String,
        first_line: u64,
    },
}

/// What a file held: the good practices and every bad row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub format: Format,
    pub practices: Vec<Practice>,
    pub errors: Vec<RowError>,
}

/// Reads a whole organisations CSV. Bad rows are collected in
/// [`Parsed::errors`] (a loader should refuse the file if there are any);
/// only an unusable header is an error.
pub fn parse(mut reader: impl Read) -> Result<Parsed, FileError> {
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|err| FileError::Read(err.to_string()))?;
    let mut lines = LineCounter::new(&data);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data.as_slice());
    let mut records = csv.byte_records();
    let header = match records.next() {
        None => return Err(FileError::Empty),
        Some(Err(err)) => return Err(FileError::Unreadable(err.to_string())),
        Some(Ok(header)) => header,
    };
    let columns = Columns::from_header(&header)?;
    let mut practices: Vec<Practice> = Vec::new();
    let mut errors = Vec::new();
    let mut seen = Seen::default();
    // The csv crate's own line numbers do not count blank lines: count them here.
    let mut last_line = 1u64;
    for record in records {
        let position = match &record {
            Ok(record) => record.position(),
            Err(err) => err.position(),
        };
        let line = position
            .map(|p| lines.line_at(p.byte()))
            .unwrap_or(last_line + 1);
        last_line = line;
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                errors.push(RowError {
                    line,
                    problem: Problem::Unreadable(err.to_string()),
                });
                continue;
            }
        };
        if record
            .iter()
            .all(|field| field.iter().all(u8::is_ascii_whitespace))
        {
            continue; // blank line
        }
        if record.len() != columns.width {
            errors.push(RowError {
                line,
                problem: Problem::FieldCount {
                    found: record.len(),
                    expected: columns.width,
                },
            });
            continue;
        }
        let practice = match columns.practice(&record) {
            Ok(practice) => practice,
            Err(problem) => {
                errors.push(RowError { line, problem });
                continue;
            }
        };
        if let Err(problem) = seen.check(&practice, line) {
            errors.push(RowError { line, problem });
            continue;
        }
        practices.push(practice);
    }
    Ok(Parsed {
        format: columns.format,
        practices,
        errors,
    })
}

/// Line numbers (1-based) of byte offsets, for offsets that only grow.
struct LineCounter<'a> {
    data: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(data: &'a [u8]) -> Self {
        LineCounter {
            data,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record starting at `byte`. The csv crate reports the
    /// end of the previous record as the start, before any blank lines it
    /// skipped, so line ends there are passed over.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut byte = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        while matches!(self.data.get(byte), Some(b'\n' | b'\r')) {
            byte += 1;
        }
        if byte > self.offset {
            self.line += self.data[self.offset..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.offset = byte;
        }
        self.line
    }
}

/// Where each column is in the file.
struct Columns {
    format: Format,
    width: usize,
    index: HashMap<&'static str, usize>,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Columns, FileError> {
        let known: Vec<&'static str> = NHS_DIGITAL_COLUMNS
            .iter()
            .chain(DATE_COLUMNS.iter())
            .copied()
            .collect();
        let mut index = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let name = String::from_utf8_lossy(raw);
            // A UTF-8 byte-order mark is common in files saved by spreadsheets.
            let name = name
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_uppercase();
            if let Some(column) = known.iter().find(|k| **k == name) {
                if index.insert(*column, i).is_some() {
                    return Err(FileError::DuplicateColumn(name));
                }
            }
        }
        if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !index.contains_key(*c)) {
            return Err(FileError::MissingColumn(missing));
        }
        let format = match DATE_COLUMNS.map(|c| index.contains_key(c)) {
            [false, false] => Format::NhsDigital,
            [true, true] => Format::Callpulse,
            [false, true] => return Err(FileError::MissingColumn("OPEN_DATE")),
            [true, false] => return Err(FileError::MissingColumn("CLOSE_DATE")),
        };
        Ok(Columns {
            format,
            width: header.len(),
            index,
        })
    }

    fn text(&self, record: &csv::ByteRecord, column: &'static str) -> Result<String, Problem> {
        let Some(&i) = self.index.get(column) else {
            return Ok(String::new());
        };
        let raw = record.get(i).unwrap_or_default();
        match std::str::from_utf8(raw) {
            Ok(text) => Ok(text.trim().to_string()),
            Err(_) => Err(Problem::Unreadable(format!("{column} is not UTF-8"))),
        }
    }

    fn required(&self, record: &csv::ByteRecord, column: &'static str) -> Result<String, Problem> {
        let text = self.text(record, column)?;
        if text.is_empty() {
            return Err(Problem::Missing { column });
        }
        Ok(text)
    }

    fn code(
        &self,
        record: &csv::ByteRecord,
        column: &'static str,
        valid: fn(&[u8]) -> bool,
        expected: &'static str,
    ) -> Result<String, Problem> {
        let code = self.required(record, column)?.to_ascii_uppercase();
        if !valid(code.as_bytes()) {
            return Err(Problem::InvalidCode {
                column,
                value: code,
                expected,
            });
        }
        Ok(code)
    }

    fn date(
        &self,
        record: &csv::ByteRecord,
        column: &'static str,
    ) -> Result<Option<NaiveDate>, Problem> {
        let text = self.text(record, column)?;
        if text.is_empty() {
            return Ok(None);
        }
        parse_date(&text).map(Some).ok_or(Problem::InvalidDate {
            column,
            value: text,
        })
    }

    fn practice(&self, record: &csv::ByteRecord) -> Result<Practice, Problem> {
        let code = self.code(
            record,
            "PRACTICE_CODE",
            is_practice_code,
            "a practice code (a letter and 5 digits, e.g. A81001)",
        )?;
        let name = self.required(record, "PRACTICE_NAME")?;
        let postcode = self.text(record, "PRACTICE_POSTCODE")?.to_ascii_uppercase();
        let pcn_code = self.text(record, "PCN_CODE")?.to_ascii_uppercase();
        let pcn_name = self.text(record, "PCN_NAME")?;
        if !pcn_code.is_empty() && !is_pcn_code(pcn_code.as_bytes()) {
            return Err(Problem::InvalidCode {
                column: "PCN_CODE",
                value: pcn_code,
                expected: "a PCN code (U and 5 digits, e.g. U12345)",
            });
        }
        if !pcn_code.is_empty() && pcn_name.is_empty() {
            return Err(Problem::Missing { column: "PCN_NAME" });
        }
        let sub_icb_code = self.code(
            record,
            "SUB_ICB_LOCATION_CODE",
            is_sub_icb_code,
            "a sub-ICB location code (3 or 5 letters and digits, e.g. 08F or D4U1Y)",
        )?;
        let sub_icb_name = self.required(record, "SUB_ICB_LOCATION_NAME")?;
        let icb_code = self.code(
            record,
            "ICB_CODE",
            is_icb_code,
            "an ICB code (3 characters starting with Q, e.g. QHM)",
        )?;
        let icb_name = self.required(record, "ICB_NAME")?;
        let region_code = self.code(
            record,
            "COMM_REGION_CODE",
            is_region_code,
            "an NHS England region code (Y and 2 digits, e.g. Y63)",
        )?;
        let region_name = self.required(record, "COMM_REGION_NAME")?;
        let open_date = self.date(record, "OPEN_DATE")?;
        let close_date = self.date(record, "CLOSE_DATE")?;
        if let (Some(open), Some(close)) = (open_date, close_date) {
            if close < open {
                return Err(Problem::CloseBeforeOpen { open, close });
            }
        }
        Ok(Practice {
            code,
            name,
            postcode,
            pcn_code,
            pcn_name,
            sub_icb_code,
            sub_icb_name,
            icb_code,
            icb_name,
            region_code,
            region_name,
            open_date,
            close_date,
        })
    }
}

/// First line of each practice, sub-ICB location and ICB, to find duplicates
/// and codes placed under two different parents.
#[derive(Default)]
struct Seen {
    practices: HashMap<String, u64>,
    sub_icbs: HashMap<String, (String, u64)>,
    icbs: HashMap<String, (String, u64)>,
}

impl Seen {
    fn check(&mut self, practice: &Practice, line: u64) -> Result<(), Problem> {
        if let Some(&first_line) = self.practices.get(&practice.code) {
            return Err(Problem::DuplicatePractice {
                code: practice.code.clone(),
                first_line,
            });
        }
        let parent_of = |seen: &HashMap<String, (String, u64)>,
                         level: &'static str,
                         code: &str,
                         parent: &str| match seen.get(code) {
            Some((first_parent, first_line)) if first_parent != parent => {
                Err(Problem::ConflictingParent {
                    level,
                    code: code.to_string(),
                    parent: parent.to_string(),
                    first_parent: first_parent.clone(),
                    first_line: *first_line,
                })
            }
            _ => Ok(()),
        };
        parent_of(
            &self.sub_icbs,
            "sub-ICB location",
            &practice.sub_icb_code,
            &practice.icb_code,
        )?;
        parent_of(&self.icbs, "ICB", &practice.icb_code, &practice.region_code)?;
        self.practices.insert(practice.code.clone(), line);
        self.sub_icbs
            .entry(practice.sub_icb_code.clone())
            .or_insert_with(|| (practice.icb_code.clone(), line));
        self.icbs
            .entry(practice.icb_code.clone())
            .or_insert_with(|| (practice.region_code.clone(), line));
        Ok(())
    }
}

/// A letter and 5 digits, e.g. `A81001`.
pub fn is_practice_code(code: &[u8]) -> bool {
    code.len() == 6 && code[0].is_ascii_uppercase() && code[1..].iter().all(u8::is_ascii_digit)
}

/// `U` and 5 digits, e.g. `U12345`.
pub fn is_pcn_code(code: &[u8]) -> bool {
    code.len() == 6 && code[0] == b'U' && code[1..].iter().all(u8::is_ascii_digit)
}

/// 3 or 5 upper-case letters and digits (former CCG codes), e.g. `08F`, `D4U1Y`.
pub fn is_sub_icb_code(code: &[u8]) -> bool {
    matches!(code.len(), 3 | 5)
        && code
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// 3 characters starting with `Q`, e.g. `QHM`, `QF7`.
pub fn is_icb_code(code: &[u8]) -> bool {
    code.len() == 3
        && code[0] == b'Q'
        && code[1..]
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// `Y` and 2 digits, e.g. `Y63`.
pub fn is_region_code(code: &[u8]) -> bool {
    code.len() == 3 && code[0] == b'Y' && code[1..].iter().all(u8::is_ascii_digit)
}

/// `YYYY-MM-DD` or `YYYYMMDD` (ODS files), within what a ClickHouse `Date` holds on every version.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let date = if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        NaiveDate::parse_from_str(text, "%Y%m%d").ok()?
    } else if text.len() == 10 {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?
    } else {
        return None;
    };
    let earliest = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let latest = NaiveDate::from_ymd_opt(2105, 12, 31)?;
    (earliest..=latest).contains(&date).then_some(date)
}

/// How many organisations of each level a set of practices names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCounts {
    pub practices: usize,
    /// Practices with a close date.
    pub closed: usize,
    /// Distinct non-empty PCN codes.
    pub pcns: usize,
    pub sub_icbs: usize,
    pub icbs: usize,
    pub regions: usize,
}

impl LevelCounts {
    pub fn of(practices: &[Practice]) -> LevelCounts {
        let distinct = |code: fn(&Practice) -> &str| {
            practices
                .iter()
                .map(code)
                .filter(|c| !c.is_empty())
                .collect::<BTreeSet<_>>()
                .len()
        };
        LevelCounts {
            practices: practices.len(),
            closed: practices.iter().filter(|p| p.close_date.is_some()).count(),
            pcns: distinct(|p| &p.pcn_code),
            sub_icbs: distinct(|p| &p.sub_icb_code),
            icbs: distinct(|p| &p.icb_code),
            regions: distinct(|p| &p.region_code),
        }
    }
}

impl fmt::Display for LevelCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} practices ({} open, {} closed), {} PCNs, {} sub-ICB locations, {} ICBs, {} regions",
            self.practices,
            self.practices - self.closed,
            self.closed,
            self.pcns,
            self.sub_icbs,
            self.icbs,
            self.regions
        )
    }
}

/// An `organisations` row. Dates are days since 1970-01-01 (ClickHouse `Date`).
#[derive(Debug, Clone, clickhouse::Row, Serialize)]
pub struct OrganisationRow {
    pub practice_code: String,
    pub practice_name: String,
    pub practice_postcode: String,
    pub pcn_code: String,
    pub pcn_name: String,
    pub sub_icb_code: String,
    pub sub_icb_name: String,
    pub icb_code: String,
    pub icb_name: String,
    pub region_code: String,
    pub region_name: String,
    pub open_date: Option<u16>,
    pub close_date: Option<u16>,
    pub loaded_at: u32,
    pub version: u64,
}

impl OrganisationRow {
    /// The row of `practice` for a load at `loaded_at_ms` (which is also the version).
    pub fn new(practice: &Practice, loaded_at_ms: u64) -> OrganisationRow {
        let days = |date: NaiveDate| {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            // parse_date keeps dates within 1970..=2105, so this fits.
            u16::try_from((date - epoch).num_days()).unwrap_or(u16::MAX)
        };
        OrganisationRow {
            practice_code: practice.code.clone(),
            practice_name: practice.name.clone(),
            practice_postcode: practice.postcode.clone(),
            pcn_code: practice.pcn_code.clone(),
            pcn_name: practice.pcn_name.clone(),
            sub_icb_code: practice.sub_icb_code.clone(),
            sub_icb_name: practice.sub_icb_name.clone(),
            icb_code: practice.icb_code.clone(),
            icb_name: practice.icb_name.clone(),
            region_code: practice.region_code.clone(),
            region_name: practice.region_name.clone(),
            open_date: practice.open_date.map(days),
            close_date: practice.close_date.map(days),
            loaded_at: (loaded_at_ms / 1000) as u32,
            version: loaded_at_ms,
        }
    }
}

/// Applies the schema, then inserts every practice in one insert with a new
/// version (the load time in milliseconds), so that `FINAL` shows this load
/// for every practice it holds. Returns the version.
pub async fn load(config: &Config, practices: &[Practice]) -> Result<u64> {
    crate::migrate::apply(config).await?;
    let loaded_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("reading the clock")?
        .as_millis() as u64;
    let client = crate::clickhouse_client(config);
    let mut insert = client
        .insert::<OrganisationRow>("organisations")
        .await
        .context("starting the organisations insert")?;
    for practice in practices {
        insert
            .write(&OrganisationRow::new(practice, loaded_at_ms))
            .await
            .context("inserting organisations")?;
    }
    insert.end().await.context("inserting organisations")?;
    Ok(loaded_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NHS_HEADER: &str = "PRACTICE_CODE,PRACTICE_NAME,PRACTICE_POSTCODE,PCN_CODE,PCN_NAME,ONS_SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_NAME,ONS_ICB_CODE,ICB_CODE,ICB_NAME,ONS_COMM_REGION_CODE,COMM_REGION_CODE,COMM_REGION_NAME,SUPPLIER_NAME";

    fn nhs_row(practice: &str, pcn: &str, sub_icb: &str, icb: &str, region: &str) -> String {
        format!("{practice},\"THE SURGERY, HIGH STREET\",TS1 2AB,{pcn},SOME PCN,E38000001,{sub_icb},NHS SOMEWHERE ICB - {sub_icb},E54000050,{icb},NHS SOMEWHERE INTEGRATED CARE BOARD,E40000012,{region},NORTH EAST AND YORKSHIRE,EMIS")
    }

    fn callpulse_row(practice: &str, open: &str, close: &str) -> String {
        format!(
            "{},{open},{close}",
            nhs_row(practice, "U12345", "00L", "QHM", "Y63")
        )
    }

    fn parsed(text: &str) -> Parsed {
        parse(text.as_bytes()).expect("a usable header")
    }

    #[test]
    fn reads_nhs_digital_mapping_file() {
        let text = format!(
            "{NHS_HEADER}\r\n{}\r\n{}\r\n",
            nhs_row("A81001", "U12345", "00L", "QHM", "Y63"),
            nhs_row("a81002", "", "D4U1Y", "QHM", "Y63"),
        );
        let parsed = parsed(&text);
        assert_eq!(parsed.format, Format::NhsDigital);
        assert_eq!(parsed.errors, vec![]);
        assert_eq!(parsed.practices.len(), 2);
        let first = &parsed.practices[0];
        assert_eq!(first.code, "A81001");
        assert_eq!(first.name, "THE SURGERY, HIGH STREET");
        assert_eq!(first.postcode, "TS1 2AB");
        assert_eq!(first.pcn_code, "U12345");
        assert_eq!(first.sub_icb_code, "00L");
        assert_eq!(first.icb_code, "QHM");
        assert_eq!(first.region_code, "Y63");
        assert_eq!(first.region_name, "NORTH EAST AND YORKSHIRE");
        assert_eq!((first.open_date, first.close_date), (None, None));
        // Codes are upper-cased; a practice may be in no PCN.
        assert_eq!(parsed.practices[1].code, "A81002");
        assert_eq!(parsed.practices[1].pcn_code, "");
        assert_eq!(
            LevelCounts::of(&parsed.practices),
            LevelCounts {
                practices: 2,
                closed: 0,
                pcns: 1,
                sub_icbs: 2,
                icbs: 1,
                regions: 1
            }
        );
    }

    #[test]
    fn reads_callpulse_format_with_dates_in_either_shape() {
        let text = format!(
            "{NHS_HEADER},OPEN_DATE,CLOSE_DATE\n{}\n{}\n",
            callpulse_row("A81001", "1974-04-01", ""),
            callpulse_row("B82002", "19740401", "20231231"),
        );
        let parsed = parsed(&text);
        assert_eq!(parsed.format, Format::Callpulse);
        assert_eq!(parsed.errors, vec![]);
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(parsed.practices[0].open_date, date(1974, 4, 1));
        assert_eq!(parsed.practices[0].close_date, None);
        assert_eq!(parsed.practices[1].open_date, date(1974, 4, 1));
        assert_eq!(parsed.practices[1].close_date, date(2023, 12, 31));
        assert_eq!(LevelCounts::of(&parsed.practices).closed, 1);
        let row = OrganisationRow::new(&parsed.practices[1], 1_700_000_000_123);
        assert_eq!(row.open_date, Some(1551)); // 1974-04-01
        assert_eq!(row.close_date, Some(19722)); // 2023-12-31
        assert_eq!(
            (row.loaded_at, row.version),
            (1_700_000_000, 1_700_000_000_123)
        );
    }

    #[test]
    fn columns_may_come_in_any_order_and_optional_ones_may_be_missing() {
        let text = "comm_region_name,COMM_REGION_CODE,ICB_NAME,ICB_CODE,SUB_ICB_LOCATION_NAME,SUB_ICB_LOCATION_CODE,PCN_NAME,PCN_CODE,PRACTICE_POSTCODE,PRACTICE_NAME,\u{feff}PRACTICE_CODE,EXTRA\nLondon,Y56,NHS North Central London ICB,QMJ,NHS North Central London ICB - 93C,93C,Camden PCN,U00001,NW1 1AA,Park Surgery,F83001,x\n";
        let parsed = parsed(text);
        assert_eq!(parsed.errors, vec![]);
        assert_eq!(parsed.practices[0].code, "F83001");
        assert_eq!(parsed.practices[0].region_name, "London");
    }

    #[test]
    fn an_unusable_header_is_an_error() {
        assert_eq!(parse("".as_bytes()), Err(FileError::Empty));
        assert_eq!(
            parse("PRACTICE_CODE,PRACTICE_NAME\n".as_bytes()),
            Err(FileError::MissingColumn("PRACTICE_POSTCODE"))
        );
        assert_eq!(
            parse(format!("{NHS_HEADER},OPEN_DATE\n").as_bytes()),
            Err(FileError::MissingColumn("CLOSE_DATE"))
        );
        assert_eq!(
            parse(format!("{NHS_HEADER},ICB_CODE\n").as_bytes()),
            Err(FileError::DuplicateColumn("ICB_CODE".into()))
        );
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_the_rest_is_kept() {
        let lines = [
            format!("{NHS_HEADER},OPEN_DATE,CLOSE_DATE"),
            callpulse_row("A81001", "1974-04-01", ""), // 2: good
            callpulse_row("A8100", "", ""),            // 3
            callpulse_row("A81003", "1974-13-01", ""), // 4
            callpulse_row("A81004", "2020-01-01", "2019-01-01"), // 5
            nhs_row("A81005", "V12345", "00L", "QHM", "Y63") + ",,", // 6
            nhs_row("A81006", "U12345", "00LL", "QHM", "Y63") + ",,", // 7
            nhs_row("A81007", "U12345", "00L", "RHM", "Y63") + ",,", // 8
            nhs_row("A81008", "U12345", "00L", "QHM", "X63") + ",,", // 9
            "A81009,too,few".to_string(),              // 10
            String::new(),                             // 11: blank, skipped
            callpulse_row("A81010", "", "1969-12-31"), // 12
            nhs_row("A81011", "U12345", "00L", "QHM", "Y63")
                .replace("THE SURGERY, HIGH STREET", "")
                + ",,", // 13
            callpulse_row("A81012", "", ""),           // 14: good
        ];
        let mut text = lines.join("\n");
        text.push('\n');
        let parsed = parsed(&text);
        let codes: Vec<&str> = parsed.practices.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["A81001", "A81012"]);
        let found: Vec<(u64, String)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.to_string()))
            .collect();
        let lines_with_errors: Vec<u64> = found.iter().map(|(line, _)| *line).collect();
        assert_eq!(
            lines_with_errors,
            [3, 4, 5, 6, 7, 8, 9, 10, 12, 13],
            "{found:#?}"
        );
        assert!(found[0]
            .1
            .starts_with("line 3: PRACTICE_CODE `A8100` is not a practice code"));
        assert!(found[1].1.contains("OPEN_DATE `1974-13-01` is not a date"));
        assert_eq!(
            found[2].1,
            "line 5: CLOSE_DATE 2019-01-01 is before OPEN_DATE 2020-01-01"
        );
        assert!(found[3].1.contains("PCN_CODE `V12345`"));
        assert!(found[4].1.contains("SUB_ICB_LOCATION_CODE `00LL`"));
        assert!(found[5].1.contains("ICB_CODE `RHM`"));
        assert!(found[6].1.contains("COMM_REGION_CODE `X63`"));
        assert_eq!(found[7].1, "line 10: 3 fields, but the header has 17");
        assert!(found[8].1.contains("CLOSE_DATE `1969-12-31`"));
        assert_eq!(found[9].1, "line 13: PRACTICE_NAME is empty");
    }

    #[test]
    fn duplicate_practices_name_both_lines() {
        let text = format!(
            "{NHS_HEADER}\n{}\n{}\n{}\n",
            nhs_row("A81001", "U12345", "00L", "QHM", "Y63"),
            nhs_row("A81002", "U12345", "00L", "QHM", "Y63"),
            nhs_row("a81001", "U12346", "00L", "QHM", "Y63"),
        );
        let parsed = parsed(&text);
        assert_eq!(parsed.practices.len(), 2);
        assert_eq!(
            parsed.errors,
            vec![RowError {
                line: 4,
                problem: Problem::DuplicatePractice {
                    code: "A81001".into(),
                    first_line: 2
                }
            }]
        );
        assert_eq!(
            parsed.errors[0].to_string(),
            "line 4: practice A81001 is already on line 2"
        );
    }

    #[test]
    fn a_code_under_two_parents_is_an_error() {
        let text = format!(
            "{NHS_HEADER}\n{}\n{}\n{}\n",
            nhs_row("A81001", "U12345", "00L", "QHM", "Y63"),
            nhs_row("A81002", "U12345", "00L", "QOQ", "Y63"),
            nhs_row("A81003", "U12345", "00N", "QHM", "Y62"),
        );
        let errors: Vec<String> = parsed(&text).errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "line 3: sub-ICB location 00L is under QOQ here but under QHM on line 2",
                "line 4: ICB QHM is under Y62 here but under Y63 on line 2",
            ]
        );
    }

    #[test]
    fn multi_line_fields_and_blank_lines_keep_line_numbers_right() {
        let text = format!(
            "{NHS_HEADER}\n{}\r\n\r\n{}\n\n\n{}\n",
            nhs_row("A81001", "U12345", "00L", "QHM", "Y63")
                .replace("THE SURGERY, HIGH STREET", "THE SURGERY\nHIGH STREET"),
            nhs_row("A81002", "U12345", "00L", "QHM", "Y63"),
            nhs_row("A81001", "U12345", "00L", "QHM", "Y63"),
        );
        let parsed = parsed(&text);
        assert_eq!(
            parsed.errors[0].to_string(),
            "line 8: practice A81001 is already on line 2"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: [&[u8]; 5] = [
            b"\xff\xfe\x00",
            b"PRACTICE_CODE\n\"unterminated",
            b"\n\n\n",
            b",,,,,\n,,,,",
            b"\xef\xbb\xbf",
        ];
        for input in inputs {
            let _ = parse(input);
        }
        let mut text = format!("{NHS_HEADER}\n").into_bytes();
        text.extend_from_slice(b"A81001,\xff\xfe,,,,,,,,,,,,,\n\"A81002\n");
        let parsed = parse(text.as_slice()).unwrap();
        assert!(parsed.practices.is_empty());
        assert!(!parsed.errors.is_empty());
    }

    #[test]
    fn code_shapes() {
        assert!(is_practice_code(b"A81001") && is_practice_code(b"Y02345"));
        assert!(!is_practice_code(b"181001") && !is_practice_code(b"A8100A"));
        assert!(is_pcn_code(b"U12345") && !is_pcn_code(b"U1234"));
        assert!(is_sub_icb_code(b"08F") && is_sub_icb_code(b"D4U1Y"));
        assert!(!is_sub_icb_code(b"08") && !is_sub_icb_code(b"08f") && !is_sub_icb_code(b"D4U1"));
        assert!(is_icb_code(b"QHM") && is_icb_code(b"QF7") && !is_icb_code(b"RHM"));
        assert!(is_region_code(b"Y56") && !is_region_code(b"Y5A") && !is_region_code(b"Y563"));
        assert_eq!(
            parse_date("2105-12-31"),
            NaiveDate::from_ymd_opt(2105, 12, 31)
        );
        assert_eq!(parse_date("2106-01-01"), None);
        assert_eq!(parse_date("2020-02-30"), None);
        assert_eq!(parse_date("2020-2-3"), None);
    }
}
