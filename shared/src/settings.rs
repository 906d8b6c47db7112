//! The one reader of settings: every function, tool and test reads its environment through
//! [`Env`], and every problem with a setting is a [`SettingError`] naming the variable, so a
//! function that cannot start says exactly which setting to fix.
//!
//! - [`Env::process`] reads the process environment (Lambda's configuration); [`Env::from_pairs`]
//!   and [`Env::from_lookup`] serve tests and tools that hold a function's settings elsewhere.
//! - A value that is empty or only whitespace counts as unset, everywhere.
//! - Written here rather than with `envy` or `config`: those deserialize a whole struct and
//!   report serde's message, while each setting here has its own range or shape check whose
//!   error must name the variable and the value (and a few take a blank value to mean
//!   something); the reader is the 60 lines of lookups that those checks sit on.
//! - Each typed setting struct (`RunnerConfig`, `VerifierConfig`, `PipelineConfig`,
//!   `AritmaConfig`, the policy sources) is parsed once at start from an [`Env`].

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// A setting is missing or unusable; the function does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A required variable is unset or empty.
    #[error("{var} is required{}", if hint.is_empty() { String::new() } else { format!(": {hint}") })]
    Missing {
        /// Variable name.
        var: &'static str,
        /// What it should contain (may be empty).
        hint: &'static str,
    },
    /// A variable has a value that cannot be used.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// Variable name.
        var: &'static str,
        /// The value found.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

impl SettingError {
    /// `var`'s value `value` is refused for `reason`.
    pub fn invalid(var: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// A lookup of a variable by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where settings are read from.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

impl<'a> Env<'a> {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Fixed pairs (tests, tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_lookup(move |name| map.get(name).cloned())
    }

    /// Any lookup of a variable by name.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// The trimmed value, or `None` when unset or empty.
    pub fn optional(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value as given (untrimmed), even when empty: for the few settings where an empty
    /// value means something (an empty `METRICS_NAMESPACE` disables metrics).
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
    }

    /// A required value.
    pub fn required(&self, var: &'static str) -> Result<String, SettingError> {
        self.required_hint(var, "")
    }

    /// A required value, with what it should contain for the error.
    pub fn required_hint(
        &self,
        var: &'static str,
        hint: &'static str,
    ) -> Result<String, SettingError> {
        self.optional(var)
            .ok_or(SettingError::Missing { var, hint })
    }

    /// A parsed value, or `default` when unset.
    pub fn parsed<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, SettingError>
    where
        T::Err: Display,
    {
        match self.optional(var) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e: T::Err| SettingError::invalid(var, v.clone(), e.to_string())),
        }
    }

    /// A value read by `parse` (which says why it refuses one), or `None` when unset.
    pub fn parsed_with<T>(
        &self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingError> {
        match self.optional(var) {
            None => Ok(None),
            Some(v) => parse(&v)
                .map(Some)
                .map_err(|reason| SettingError::invalid(var, v, reason)),
        }
    }

    /// A comma-separated list (items trimmed, empty items dropped); empty when unset.
    pub fn list(&self, var: &str) -> Vec<String> {
        self.optional(var)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unset_and_errors_name_the_variable() {
        let env = Env::from_pairs([("A", " 12 "), ("B", "  "), ("C", "x"), ("L", " a, ,b ")]);
        assert_eq!(env.optional("A").as_deref(), Some("12"));
        assert_eq!(env.optional("B"), None);
        assert_eq!(env.parsed("A", 0u32), Ok(12));
        assert_eq!(env.parsed("B", 7u32), Ok(7));
        assert_eq!(
            env.parsed("C", 0u32).unwrap_err().to_string(),
            "C=\"x\" is invalid: invalid digit found in string"
        );
        assert_eq!(env.required("B").unwrap_err().to_string(), "B is required");
        assert_eq!(
            env.required_hint("Z", "a URL").unwrap_err().to_string(),
            "Z is required: a URL"
        );
        assert_eq!(env.list("L"), ["a", "b"]);
        assert_eq!(
            env.parsed_with("C", |v| if v == "x" { Err("no x".into()) } else { Ok(1) }),
            Err(SettingError::invalid("C", "x", "no x"))
        );
    }
}
