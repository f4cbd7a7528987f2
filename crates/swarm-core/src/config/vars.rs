//! Reading the environment: each kind of variable read and checked one way, with the error
//! that names it.

use std::time::Duration;

use super::ConfigError;

pub(super) fn invalid(name: &'static str, value: String, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value,
        reason: reason.into(),
    }
}

/// The variables, each read and checked one way.
pub(super) struct Vars<G>(pub(super) G);

impl<G: Fn(&str) -> Option<String>> Vars<G> {
    /// A value, trimmed; None when unset or empty.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// Seconds between 0 and 48 h (fractions allowed), `default` when unset.
    pub(super) fn secs_or(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(v) = (self.0)(name) else {
            return Ok(default);
        };
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 172_800.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid(name, v, "expected seconds between 0 and 172800"))
    }

    pub(super) fn secs(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.secs_or(name, Duration::from_secs(default))
    }

    /// One of `options` (trimmed); `default` when unset or empty.
    pub(super) fn choice<T: Copy>(
        &self,
        name: &'static str,
        options: &[(&str, T)],
        default: T,
        reason: &str,
    ) -> Result<T, ConfigError> {
        match (self.0)(name).as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => options
                .iter()
                .find(|(o, _)| *o == v)
                .map(|(_, t)| *t)
                .ok_or_else(|| invalid(name, v.into(), reason)),
        }
    }

    /// A value (trimmed) that must pass `valid`; None when unset or empty.
    pub(super) fn text(
        &self,
        name: &'static str,
        valid: impl Fn(&str) -> bool,
        reason: &str,
    ) -> Result<Option<String>, ConfigError> {
        match (self.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if valid(&v) => Ok(Some(v)),
            Some(v) => Err(invalid(name, v, reason)),
        }
    }

    /// A tag key: 1 to 128 characters.
    pub(super) fn tag(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let v = (self.0)(name).unwrap_or_else(|| default.into());
        if v.is_empty() || v.len() > 128 {
            return Err(invalid(name, v, "a tag key of 1 to 128 characters"));
        }
        Ok(v)
    }
}
