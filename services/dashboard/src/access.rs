//! Who may see what: login tokens configured by the operator, each with a
//! scope (all of England, or one ICB). Tokens are compared in constant time
//! and never logged; only a token's name is.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::node::{is_icb_code, Level, Node};
use crate::Error;

/// Shorter tokens are refused at start-up: they could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every organisation (NHS England's and analysts' tokens).
    England,
    /// One ICB, its PCNs and practices (an ICB's primary care team).
    Icb(String),
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, Error> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("england") {
            return Ok(Scope::England);
        }
        let code = text.to_ascii_uppercase();
        if is_icb_code(&code) {
            Ok(Scope::Icb(code))
        } else {
            Err(Error::Tokens(format!(
                "scope `{text}` is neither `england` nor an ICB code such as QHM"
            )))
        }
    }

    /// The node a user of this scope starts at.
    pub fn root(&self) -> Node {
        match self {
            Scope::England => Node::england(),
            Scope::Icb(code) => Node {
                level: Level::Icb,
                code: code.clone(),
            },
        }
    }
}

/// One configured token: a name for logs, the SHA-256 of the secret, a scope.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    digest: [u8; 32],
    pub scope: Scope,
}

/// The secret stays out of logs and panics: only the name and scope show.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The file format: `[[token]]` tables of name, token and scope.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token: String,
    scope: String,
}

/// Every token the dashboard accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens::default()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Adds one token; refuses short secrets and a secret given twice.
    pub fn add(&mut self, name: &str, secret: &str, scope: Scope) -> Result<(), Error> {
        if secret.len() < MIN_TOKEN_LEN || secret.chars().any(char::is_whitespace) {
            return Err(Error::Tokens(format!(
                "token `{name}`: a token must be at least {MIN_TOKEN_LEN} characters without spaces"
            )));
        }
        if self.find(secret).is_some() {
            return Err(Error::Tokens(format!(
                "token `{name}`: the same secret is configured twice"
            )));
        }
        self.tokens.push(Token {
            name: name.to_string(),
            digest: Sha256::digest(secret.as_bytes()).into(),
            scope,
        });
        Ok(())
    }

    /// Reads a tokens file (TOML):
    ///
    /// ```toml
    /// [[token]]
    /// name = "qhm-primary-care"
    /// token = "a long random string"
    /// scope = "QHM"        # or "england"
    /// ```
    pub fn add_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::Tokens(format!("reading {}: {err}", path.display())))?;
        let file: TokensFile = toml::from_str(&text).map_err(|err| {
            let problem = callpulse_runtime::config::toml_problem(&text, &err);
            Error::Tokens(format!("{}: {problem}", path.display()))
        })?;
        for entry in file.token {
            let scope = Scope::parse(&entry.scope)
                .map_err(|err| Error::Tokens(format!("{}: {err}", path.display())))?;
            self.add(&entry.name, &entry.token, scope)
                .map_err(|err| Error::Tokens(format!("{}: {err}", path.display())))?;
        }
        Ok(())
    }

    /// Adds `SCOPE=TOKEN` pairs, comma separated (from the environment).
    pub fn add_pairs(&mut self, pairs: &str) -> Result<(), Error> {
        for (i, pair) in pairs.split(',').map(str::trim).enumerate() {
            if pair.is_empty() {
                continue;
            }
            let (scope, secret) = pair.split_once('=').ok_or_else(|| {
                Error::Tokens(format!("dashboard.tokens entry {}: not SCOPE=TOKEN", i + 1))
            })?;
            // Not quoted: with a comma or `=` missing, a token ends up here.
            let scope = Scope::parse(scope).map_err(|_| {
                Error::Tokens(format!(
                    "dashboard.tokens entry {}: the scope before `=` is neither `england` nor an ICB code such as QHM",
                    i + 1
                ))
            })?;
            let name = format!("dashboard.tokens[{}]", i + 1);
            self.add(&name, secret.trim(), scope)?;
        }
        Ok(())
    }

    /// The token matching `secret`. Every configured token is compared, in
    /// constant time, so timing tells nothing about which (or how much) matched.
    pub fn find(&self, secret: &str) -> Option<&Token> {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_scopes() {
        let mut tokens = Tokens::new();
        tokens
            .add_pairs("england=aaaaaaaaaaaaaaaa1, qhm=bbbbbbbbbbbbbbbb2")
            .unwrap();
        assert_eq!(
            tokens.find("aaaaaaaaaaaaaaaa1").unwrap().scope,
            Scope::England
        );
        assert_eq!(
            tokens.find("bbbbbbbbbbbbbbbb2").unwrap().scope,
            Scope::Icb("QHM".into())
        );
        assert!(tokens.find("bbbbbbbbbbbbbbbb").is_none());
        assert!(tokens.find("").is_none());
    }

    #[test]
    fn refuses_short_duplicate_and_unknown_scopes() {
        let mut tokens = Tokens::new();
        assert!(tokens.add_pairs("england=short").is_err());
        assert!(tokens.add_pairs("Y63=cccccccccccccccccc").is_err());
        assert!(tokens.add_pairs("nothing-here").is_err());
        // Found by tests/fuzz_parsers.rs: with an `=` and a comma missing,
        // a token became part of the next scope, which the error quoted.
        let err = Tokens::new()
            .add_pairs(
                "england=eeeeeeeeeeeeeeeeee, qoq ffffffffffffffffff england=gggggggggggggggggg",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 2"), "{err}");
        assert!(!err.contains("ffff"), "{err}");
        tokens.add_pairs("QHM=dddddddddddddddddd").unwrap();
        assert!(tokens.add_pairs("QYG=dddddddddddddddddd").is_err());
    }

    #[test]
    fn file_format_and_debug_hides_secrets() {
        let dir = std::env::temp_dir().join(format!("dashboard-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.toml");
        std::fs::write(
            &path,
            "[[token]]\nname = \"qhm\"\ntoken = \"eeeeeeeeeeeeeeeeeeee\"\nscope = \"QHM\"\n",
        )
        .unwrap();
        let mut tokens = Tokens::new();
        tokens.add_file(&path).unwrap();
        let token = tokens.find("eeeeeeeeeeeeeeeeeeee").unwrap();
        assert_eq!(token.name, "qhm");
        assert!(!format!("{tokens:?}").contains("eeee"));
        std::fs::write(&path, "[[token]]\nname = \"x\"\ntoken = \"ffffffffffffffffff\"\nscope = \"england\"\nextra = 1\n").unwrap();
        assert!(Tokens::new().add_file(&path).is_err());
        // Found by tests/fuzz_parsers.rs: toml's message showed the line
        // after an unclosed array, with its token, for the logs to keep.
        std::fs::write(
            &path,
            "[[token]]\nname = [\"qhm\"\ntoken = \"gggggggggggggggggggg\"\nscope = \"QHM\"\n",
        )
        .unwrap();
        let err = Tokens::new().add_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 3, column 1"), "{err}");
        assert!(!err.contains("gggg"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
