//! Validation errors that name the field and the reason.

use std::fmt;

/// One problem found in a value, located by a field path such as
/// `virtual_hosts[0].routes[2].action.clusters`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Dotted path from the validated value to the field.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

/// Every problem found in one value; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// Records a problem at `field`.
    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Records every problem of `inner`, each prefixed with `prefix`.
    pub fn extend_at(&mut self, prefix: &str, inner: FieldErrors) {
        for e in inner.0 {
            let field = if e.field.is_empty() {
                prefix.to_string()
            } else if e.field.starts_with('[') {
                format!("{prefix}{}", e.field)
            } else {
                format!("{prefix}.{}", e.field)
            };
            self.0.push(FieldError {
                field,
                reason: e.reason,
            });
        }
    }

    /// True when no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, otherwise the errors.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Implemented by every model type that has rules beyond what its Rust type enforces.
pub trait Validate {
    /// Returns every rule this value breaks.
    fn validate(&self) -> Result<(), FieldErrors>;
}

/// A fraction in parts per million, Envoy's `FractionalPercent` with denominator `MILLION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Percent(u32);

impl Percent {
    /// One hundred percent.
    pub const ALL: Percent = Percent(1_000_000);

    /// From parts per million; values above 1,000,000 are kept so validation can reject them.
    pub const fn from_per_million(ppm: u32) -> Self {
        Self(ppm)
    }

    /// From a percentage such as `12.5`; negative and NaN become 0.
    pub fn from_percent(p: f64) -> Self {
        if p.is_nan() || p <= 0.0 {
            return Self(0);
        }
        Self((p * 10_000.0).round().min(u32::MAX as f64) as u32)
    }

    /// Parts per million.
    pub const fn per_million(self) -> u32 {
        self.0
    }

    /// As a percentage.
    pub fn as_percent(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }

    /// True when within 0–100 %.
    pub const fn is_valid(self) -> bool {
        self.0 <= 1_000_000
    }
}
