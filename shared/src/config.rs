//! Settings, read once when an execution environment starts: required, optional and parsed ones,
//! and one error, [`ConfigError`], that names the variable and says what is wrong with it.
//!
//! A source of settings is any `Fn(&str) -> Option<String>`: [`env`], the process environment, in
//! the functions; in tests, a closure over their own variables, so that no test changes the
//! environment every test in the process shares. [`Vars`] gives every source the readers:
//!
//! - [`Vars::required`]: the value; an error when the variable is unset or empty;
//! - [`Vars::optional`]: `None` when it is unset or empty (the template sets some variables to
//!   `""` to mean "none"), so a default applies with `unwrap_or`;
//! - [`Vars::parsed`], [`Vars::parsed_with`]: an optional setting parsed (surrounding whitespace
//!   ignored); an error naming the variable and its value when it does not parse.
//!
//! Empty means empty or only whitespace. `ConfigError` implements [`std::error::Error`], so a
//! `main` that builds its clients with `?` fails init with its message, e.g.
//! `ORDER_DATABASE_URL is not set` or `OUTBOX_RETENTION_HOURS is not a whole number of hours: "1w"`.

use std::fmt;
use std::str::FromStr;

/// The process environment: the value of `name`, if it is set (and Unicode).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The readers, for any source of settings (every `Fn(&str) -> Option<String>` is one).
pub trait Vars {
    /// The raw value of `name`, if it is set.
    fn var(&self, name: &str) -> Option<String>;

    /// The value of `name`; `None` when it is unset or empty.
    fn optional(&self, name: &str) -> Option<String> {
        self.var(name).filter(|value| !value.trim().is_empty())
    }

    /// The value of `name`; an error when it is unset or empty.
    fn required(&self, name: &str) -> Result<String, ConfigError> {
        match self.var(name) {
            None => Err(ConfigError::new(name, Problem::NotSet)),
            Some(value) if value.trim().is_empty() => Err(ConfigError::new(name, Problem::Empty)),
            Some(value) => Ok(value),
        }
    }

    /// The value of `name` parsed as a `T`; `None` when it is unset or empty, an error saying it
    /// is not `expected` ("a whole number of seconds") when it does not parse.
    fn parsed<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ConfigError> {
        self.parsed_with(name, expected, |text| text.parse().ok())
    }

    /// As [`Vars::parsed`], with `parse` (`None`: not a valid value).
    fn parsed_with<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.optional(name) else {
            return Ok(None);
        };
        match parse(value.trim()) {
            Some(parsed) => Ok(Some(parsed)),
            None => Err(ConfigError::invalid(name, &value, expected)),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A setting that is missing or wrong: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    var: String,
    problem: Problem,
    note: Option<String>,
}

/// What is wrong with a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The variable is not set.
    NotSet,
    /// It is set, but empty (or only whitespace).
    Empty,
    /// Its value is not `expected` ("a whole number of hours"); `value` is `None` when the value
    /// is not repeated (a database URL may hold a password).
    Invalid {
        expected: String,
        value: Option<String>,
    },
}

impl ConfigError {
    pub fn new(var: &str, problem: Problem) -> Self {
        Self {
            var: var.to_owned(),
            problem,
            note: None,
        }
    }

    /// `var` is not set.
    pub fn not_set(var: &str) -> Self {
        Self::new(var, Problem::NotSet)
    }

    /// `var` is `value`, which is not `expected`.
    pub fn invalid(var: &str, value: &str, expected: impl Into<String>) -> Self {
        Self::new(
            var,
            Problem::Invalid {
                expected: expected.into(),
                value: Some(value.to_owned()),
            },
        )
    }

    /// `var` is not `expected`; its value is left out of the message (it may hold a secret).
    pub fn invalid_secret(var: &str, expected: impl Into<String>) -> Self {
        Self::new(
            var,
            Problem::Invalid {
                expected: expected.into(),
                value: None,
            },
        )
    }

    /// Adds why it matters or what exactly is wrong, shown in parentheses after the problem:
    /// `KAFKA_SASL_USERNAME is not set (SCRAM-SHA-512 needs it)`.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The variable.
    pub fn var(&self) -> &str {
        &self.var
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let var = &self.var;
        match &self.problem {
            Problem::NotSet => write!(f, "{var} is not set")?,
            Problem::Empty => write!(f, "{var} is empty")?,
            Problem::Invalid {
                expected,
                value: Some(value),
            } => write!(f, "{var} is not {expected}: {value:?}")?,
            Problem::Invalid {
                expected,
                value: None,
            } => write!(f, "{var} is not {expected}")?,
        }
        match &self.note {
            Some(note) => write!(f, " ({note})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// For callers that report failures as text (the custom resources' `FAILED` reasons, the signed
/// AWS calls), so `?` keeps working there.
impl From<ConfigError> for String {
    fn from(err: ConfigError) -> Self {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings `table` sets, and nothing else.
    fn vars(table: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            table
                .iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn a_required_setting_that_is_missing_names_the_variable() {
        let err = vars(&[]).required("ORDER_DATABASE_URL").unwrap_err();
        assert_eq!(err.var(), "ORDER_DATABASE_URL");
        assert_eq!(err.problem(), &Problem::NotSet);
        assert_eq!(err.to_string(), "ORDER_DATABASE_URL is not set");
    }

    #[test]
    fn a_required_setting_that_is_empty_says_so() {
        for vars in [
            vars(&[("ALERTS_QUEUE_URL", "")]),
            vars(&[("ALERTS_QUEUE_URL", "  ")]),
        ] {
            let err = vars.required("ALERTS_QUEUE_URL").unwrap_err();
            assert_eq!(err.problem(), &Problem::Empty);
            assert_eq!(err.to_string(), "ALERTS_QUEUE_URL is empty");
        }
        assert_eq!(
            vars(&[("ALERTS_QUEUE_URL", "http://q")]).required("ALERTS_QUEUE_URL"),
            Ok("http://q".to_owned())
        );
    }

    #[test]
    fn an_optional_setting_that_is_empty_is_unset() {
        let vars = vars(&[("EMPTY", ""), ("BLANK", " \t"), ("SET", "sub")]);
        assert_eq!(vars.optional("UNSET"), None);
        assert_eq!(vars.optional("EMPTY"), None);
        assert_eq!(vars.optional("BLANK"), None);
        assert_eq!(vars.optional("SET").as_deref(), Some("sub"));
        assert_eq!(
            vars.optional("EMPTY").unwrap_or_else(|| "admin".into()),
            "admin"
        );
    }

    #[test]
    fn a_parsed_setting_with_a_bad_value_names_the_variable_and_the_value() {
        let err = vars(&[("ORDER_PENDING_TIMEOUT_SECONDS", "1m")])
            .parsed::<u64>("ORDER_PENDING_TIMEOUT_SECONDS", "a whole number of seconds")
            .unwrap_err();
        assert_eq!(err.var(), "ORDER_PENDING_TIMEOUT_SECONDS");
        assert_eq!(
            err.to_string(),
            r#"ORDER_PENDING_TIMEOUT_SECONDS is not a whole number of seconds: "1m""#
        );
    }

    #[test]
    fn the_default_applies_when_a_parsed_setting_is_unset_or_empty() {
        let vars = vars(&[("EMPTY", ""), ("SET", " 90 ")]);
        let read = |name| {
            vars.parsed::<u64>(name, "a whole number")
                .map(|v| v.unwrap_or(60))
        };
        assert_eq!(read("UNSET"), Ok(60));
        assert_eq!(read("EMPTY"), Ok(60));
        assert_eq!(read("SET"), Ok(90), "surrounding whitespace is ignored");
    }

    #[test]
    fn a_custom_parse_refuses_with_the_same_error() {
        let vars = vars(&[("HOURS", "99999999999999999")]);
        let err = vars
            .parsed_with("HOURS", "a whole number of hours", |text| {
                text.parse::<u64>().ok()?.checked_mul(3_600_000)
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"HOURS is not a whole number of hours: "99999999999999999""#
        );
    }

    #[test]
    fn notes_and_secret_values_read_as_one_message() {
        let err = ConfigError::not_set("KAFKA_SASL_USERNAME").note("SCRAM-SHA-512 needs it");
        assert_eq!(
            err.to_string(),
            "KAFKA_SASL_USERNAME is not set (SCRAM-SHA-512 needs it)"
        );
        let err = ConfigError::invalid_secret("INVENTORY_DATABASE_URL", "a usable PostgreSQL URL")
            .note("auth=iam needs sslmode=require, verify-ca or verify-full");
        assert_eq!(
            err.to_string(),
            "INVENTORY_DATABASE_URL is not a usable PostgreSQL URL (auth=iam needs sslmode=require, \
             verify-ca or verify-full)"
        );
    }

    #[test]
    fn it_fails_a_main_with_its_message() {
        fn main_like() -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
            Ok(vars(&[]).required("NOTIFICATION_DATABASE_URL")?)
        }
        let err = main_like().unwrap_err();
        assert_eq!(err.to_string(), "NOTIFICATION_DATABASE_URL is not set");
        assert!(err.downcast_ref::<ConfigError>().is_some());
        let text: Result<String, String> = (|| Ok(vars(&[]).required("AWS_REGION")?))();
        assert_eq!(text, Err("AWS_REGION is not set".to_owned()));
    }

    #[test]
    fn the_process_environment_is_a_source() {
        assert_eq!(env("STOCKROOM_CONFIG_TEST_NEVER_SET"), None);
        assert!(env.optional("STOCKROOM_CONFIG_TEST_NEVER_SET").is_none());
        assert_eq!(
            env.required("STOCKROOM_CONFIG_TEST_NEVER_SET")
                .unwrap_err()
                .problem(),
            &Problem::NotSet
        );
    }
}
