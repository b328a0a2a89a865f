//! Places in the hierarchy: England, a region, an ICB, a PCN, a practice.
//! Codes are checked against the shapes `callpulse orgs load` accepts
//! (docs/organisations.md) before any query sees them.

use serde::Serialize;

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    England,
    Region,
    Icb,
    Pcn,
    Practice,
}

impl Level {
    pub fn parse(text: &str) -> Result<Level, Error> {
        Ok(match text {
            "england" => Level::England,
            "region" => Level::Region,
            "icb" => Level::Icb,
            "pcn" => Level::Pcn,
            "practice" => Level::Practice,
            _ => {
                return Err(Error::BadRequest(format!(
                    "level `{text}` is not one of england, region, icb, pcn, practice"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::England => "england",
            Level::Region => "region",
            Level::Icb => "icb",
            Level::Pcn => "pcn",
            Level::Practice => "practice",
        }
    }

    /// The rollup view of this level (docs/queries.md): a fixed name, never input.
    pub fn view(self) -> &'static str {
        match self {
            Level::England => "rollup_england",
            Level::Region => "rollup_region",
            Level::Icb => "rollup_icb",
            Level::Pcn => "rollup_pcn",
            Level::Practice => "rollup_practice",
        }
    }

    /// The level one step down the drill-down (sub-ICB locations are skipped:
    /// ICB teams plan by PCN).
    pub fn child(self) -> Option<Level> {
        match self {
            Level::England => Some(Level::Region),
            Level::Region => Some(Level::Icb),
            Level::Icb => Some(Level::Pcn),
            Level::Pcn => Some(Level::Practice),
            Level::Practice => None,
        }
    }

    /// The `organisations` columns of this level's code and name.
    pub fn org_columns(self) -> Option<(&'static str, &'static str)> {
        match self {
            Level::England => None,
            Level::Region => Some(("region_code", "region_name")),
            Level::Icb => Some(("icb_code", "icb_name")),
            Level::Pcn => Some(("pcn_code", "pcn_name")),
            Level::Practice => Some(("practice_code", "practice_name")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub level: Level,
    pub code: String,
}

impl Node {
    pub fn england() -> Node {
        Node {
            level: Level::England,
            code: "ENG".into(),
        }
    }

    /// A node from the URL, its code checked against the level's shape.
    pub fn parse(level: &str, code: &str) -> Result<Node, Error> {
        let level = Level::parse(level)?;
        let code = code.to_ascii_uppercase();
        let ok = match level {
            Level::England => code == "ENG",
            Level::Region => is_region_code(&code),
            Level::Icb => is_icb_code(&code),
            Level::Pcn => is_pcn_code(&code),
            Level::Practice => is_practice_code(&code),
        };
        if !ok {
            return Err(Error::BadRequest(format!(
                "`{code}` is not a {} code",
                level.as_str()
            )));
        }
        Ok(Node { level, code })
    }
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `Y` and two digits.
pub fn is_region_code(code: &str) -> bool {
    code.len() == 3 && code.starts_with('Y') && digits(&code[1..])
}

/// `Q` and two capital letters or digits.
pub fn is_icb_code(code: &str) -> bool {
    code.len() == 3
        && code.starts_with('Q')
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `U` and five digits.
pub fn is_pcn_code(code: &str) -> bool {
    code.len() == 6 && code.starts_with('U') && digits(&code[1..])
}

/// A capital letter and five digits.
pub fn is_practice_code(code: &str) -> bool {
    code.len() == 6 && code.as_bytes()[0].is_ascii_uppercase() && digits(&code[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked_per_level() {
        assert!(Node::parse("icb", "qhm").is_ok());
        assert!(Node::parse("icb", "QHM'").is_err());
        assert!(Node::parse("region", "Y63").is_ok());
        assert!(Node::parse("region", "Y6").is_err());
        assert!(Node::parse("pcn", "U10030").is_ok());
        assert!(Node::parse("pcn", "U1003X").is_err());
        assert!(Node::parse("practice", "A81001").is_ok());
        assert!(Node::parse("practice", "A81001 OR 1").is_err());
        assert!(Node::parse("england", "ENG").is_ok());
        assert!(Node::parse("england", "X").is_err());
        assert!(Node::parse("sub_icb", "85D").is_err());
    }
}
