//! [`TelemetryConfig`]: telemetry as data — from the environment (OpenTelemetry's standard
//! variables plus a few of ours) or from any serde format an app already reads.

use std::collections::HashMap;

use serde::Deserialize;

use super::{AccessLog, Propagation, Telemetry, Workload};

/// Everything [`Telemetry`] can be told, as plain data (`Deserialize`, every field optional):
///
/// ```yaml
/// workload: { name: reviews-v1, namespace: shop, app: reviews, version: v1 }
/// metrics: true
/// tracing: { endpoint: "http://otel-collector:4317", sampling: 0.01, propagation: [w3c, b3] }
/// access_log: { enabled: true, path: stdout, sampling: 0.1 }
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// This workload's labels.
    pub workload: WorkloadConfig,
    /// Istio's request and connection metrics. Default: on.
    pub metrics: Option<bool>,
    /// Spans over OTLP/gRPC; absent: no spans.
    pub tracing: Option<TracingConfig>,
    /// JSON access-log lines; absent or `enabled: false`: none.
    pub access_log: Option<AccessLogConfig>,
}

/// [`Workload`] as data; absent fields are `unknown`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadConfig {
    /// `WORKLOAD_NAME`.
    pub name: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// `app` label.
    pub app: Option<String>,
    /// `version` label.
    pub version: Option<String>,
    /// `destination_service` of the server stack.
    pub service: Option<String>,
}

/// Where spans go and how many.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The OTLP/gRPC collector, e.g. `http://otel-collector:4317`.
    pub endpoint: String,
    /// Share of new traces sampled, 0.0–1.0 (callers' decisions are followed). Default: 0.01,
    /// Istio's default of 1%.
    #[serde(default = "default_sampling")]
    pub sampling: f64,
    /// `service.name` of the spans. Default: the workload's app, else its name.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Header formats read and written: `w3c`, `b3`. Default: both.
    #[serde(default)]
    pub propagation: Option<Vec<String>>,
}

fn default_sampling() -> f64 {
    0.01
}

/// The access log.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// On or off. Default: on.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `stdout` (default), `stderr`, or a file path to append to.
    #[serde(default)]
    pub path: Option<String>,
    /// Share of requests logged, 0.0–1.0. Default: 1.0.
    #[serde(default = "one")]
    pub sampling: f64,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

/// Why a [`TelemetryConfig`] could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryConfigError {
    /// A variable or field has a value that cannot be used.
    #[error("telemetry config {field}: {reason}")]
    Invalid {
        /// The variable or field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The access-log file could not be opened.
    #[error("access log {path}: {source}")]
    AccessLogFile {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The OTLP exporter could not be built.
    #[error("tracing exporter for {endpoint}: {source}")]
    Exporter {
        /// The collector endpoint.
        endpoint: String,
        /// Why.
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

fn invalid(field: &str, reason: impl Into<String>) -> TelemetryConfigError {
    TelemetryConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn share(field: &str, v: f64) -> Result<f64, TelemetryConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            field,
            format!("{v} is not a share between 0.0 and 1.0"),
        ))
    }
}

impl TelemetryConfig {
    /// The config the environment describes:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `OTEL_SERVICE_NAME` | `service.name` of spans |
    /// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` | turns tracing on, spans to this collector |
    /// | `OTEL_TRACES_SAMPLER_ARG` | sampling share (default 0.01) |
    /// | `OTEL_PROPAGATORS` | `tracecontext`, `b3`, `b3multi` (comma-separated) |
    /// | `MESH_METRICS` | `false` turns metrics off |
    /// | `MESH_ACCESS_LOG` | `stdout`, `stderr`, a file path, or `off` (default) |
    /// | `MESH_ACCESS_LOG_SAMPLING` | share of requests logged (default 1.0) |
    /// | `WORKLOAD_NAME`, `POD_NAMESPACE`, `APP`, `VERSION` | workload labels (Istio's injected names) |
    pub fn from_env() -> Result<TelemetryConfig, TelemetryConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// As [`TelemetryConfig::from_env`], from the given variables.
    pub fn from_vars(
        vars: &HashMap<String, String>,
    ) -> Result<TelemetryConfig, TelemetryConfigError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let number = |k: &str| -> Result<Option<f64>, TelemetryConfigError> {
            get(k)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|e| invalid(k, format!("{v:?}: {e}")))
                })
                .transpose()
        };
        let workload = WorkloadConfig {
            name: get("WORKLOAD_NAME").map(String::from),
            namespace: get("POD_NAMESPACE").map(String::from),
            app: get("APP").map(String::from),
            version: get("VERSION").map(String::from),
            service: None,
        };
        let metrics = match get("MESH_METRICS") {
            None => None,
            Some("true" | "1" | "on") => Some(true),
            Some("false" | "0" | "off") => Some(false),
            Some(v) => {
                return Err(invalid(
                    "MESH_METRICS",
                    format!("{v:?} is not true or false"),
                ));
            }
        };
        let endpoint =
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or(get("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let tracing = match endpoint {
            None => None,
            Some(endpoint) => Some(TracingConfig {
                endpoint: endpoint.to_string(),
                sampling: number("OTEL_TRACES_SAMPLER_ARG")?.unwrap_or_else(default_sampling),
                service_name: get("OTEL_SERVICE_NAME").map(String::from),
                propagation: get("OTEL_PROPAGATORS")
                    .map(|v| v.split(',').map(|p| p.trim().to_string()).collect()),
            }),
        };
        let access_log = match get("MESH_ACCESS_LOG") {
            None | Some("off" | "false") => None,
            Some(path) => Some(AccessLogConfig {
                enabled: true,
                path: Some(path.to_string()),
                sampling: number("MESH_ACCESS_LOG_SAMPLING")?.unwrap_or(1.0),
            }),
        };
        Ok(TelemetryConfig {
            workload,
            metrics,
            tracing,
            access_log,
        })
    }

    /// The [`Telemetry`] this config describes; with tracing, also the tracer provider (keep it,
    /// and `shutdown()` it before exiting so the last spans are sent). Must be called inside a
    /// tokio runtime when tracing is configured.
    pub fn build(
        &self,
    ) -> Result<
        (
            Telemetry,
            Option<opentelemetry_sdk::trace::SdkTracerProvider>,
        ),
        TelemetryConfigError,
    > {
        let w = &self.workload;
        let d = Workload::default();
        let workload = Workload {
            name: w.name.clone().unwrap_or(d.name),
            namespace: w.namespace.clone().unwrap_or(d.namespace),
            app: w.app.clone().unwrap_or(d.app),
            version: w.version.clone().unwrap_or(d.version),
            service: w.service.clone(),
        };
        let mut b = Telemetry::builder().metrics(self.metrics.unwrap_or(true));
        let mut provider = None;
        if let Some(t) = &self.tracing {
            let sampling = share("tracing.sampling", t.sampling)?;
            if let Some(formats) = &t.propagation {
                let mut p = Propagation {
                    w3c: false,
                    b3: false,
                };
                for f in formats {
                    match f.as_str() {
                        "w3c" | "tracecontext" => p.w3c = true,
                        "b3" | "b3multi" => p.b3 = true,
                        // OpenTelemetry's other propagators carry no span context.
                        "baggage" | "none" => {}
                        other => {
                            return Err(invalid(
                                "tracing.propagation",
                                format!("{other:?} is not w3c, tracecontext, b3 or b3multi"),
                            ));
                        }
                    }
                }
                b = b.propagation(p);
            }
            let service = t
                .service_name
                .clone()
                .unwrap_or_else(|| match workload.app.as_str() {
                    super::labels::UNKNOWN => workload.name.clone(),
                    app => app.to_string(),
                });
            let p = super::otlp(&t.endpoint, &service, sampling).map_err(|source| {
                TelemetryConfigError::Exporter {
                    endpoint: t.endpoint.clone(),
                    source,
                }
            })?;
            b = b.tracer(&p);
            provider = Some(p);
        }
        if let Some(a) = self.access_log.as_ref().filter(|a| a.enabled) {
            let sampling = share("access_log.sampling", a.sampling)?;
            let log = match a.path.as_deref().unwrap_or("stdout") {
                "stdout" | "/dev/stdout" => AccessLog::stdout(),
                "stderr" | "/dev/stderr" => AccessLog::writer(std::io::stderr()),
                path => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| TelemetryConfigError::AccessLogFile {
                            path: path.to_string(),
                            source,
                        })?;
                    AccessLog::writer(file)
                }
            };
            b = b.access_log(log.sample(sampling));
        }
        Ok((b.workload(workload).build(), provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_standard_variables() {
        let c = TelemetryConfig::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_PROPAGATORS", "tracecontext, b3"),
            ("MESH_ACCESS_LOG", "stderr"),
            ("MESH_ACCESS_LOG_SAMPLING", "0.5"),
            ("WORKLOAD_NAME", "reviews-v1"),
            ("POD_NAMESPACE", "shop"),
        ]))
        .unwrap();
        let t = c.tracing.as_ref().unwrap();
        assert_eq!(t.endpoint, "http://collector:4317");
        assert_eq!(t.sampling, 0.25);
        assert_eq!(t.propagation.as_deref().unwrap(), ["tracecontext", "b3"]);
        let a = c.access_log.as_ref().unwrap();
        assert_eq!((a.path.as_deref(), a.sampling), (Some("stderr"), 0.5));
        assert_eq!(c.workload.name.as_deref(), Some("reviews-v1"));
        assert_eq!(c.metrics, None);

        let off = TelemetryConfig::from_vars(&vars(&[("MESH_ACCESS_LOG", "off")])).unwrap();
        assert_eq!(off, TelemetryConfig::default());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = TelemetryConfig::from_vars(&vars(&[
            ("MESH_ACCESS_LOG", "stdout"),
            ("MESH_ACCESS_LOG_SAMPLING", "lots"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("MESH_ACCESS_LOG_SAMPLING"), "{e}");
        let e = TelemetryConfig::from_vars(&vars(&[("MESH_METRICS", "maybe")])).unwrap_err();
        assert!(e.to_string().contains("MESH_METRICS"), "{e}");
        let c = TelemetryConfig {
            access_log: Some(AccessLogConfig {
                enabled: true,
                path: None,
                sampling: 2.0,
            }),
            ..Default::default()
        };
        let e = c.build().unwrap_err();
        assert!(e.to_string().contains("access_log.sampling"), "{e}");
    }

    #[test]
    fn deserializes_from_json_and_refuses_unknown_fields() {
        let c: TelemetryConfig = serde_json::from_str(
            r#"{"workload":{"name":"r"},"access_log":{"sampling":0.1},"metrics":false}"#,
        )
        .unwrap();
        assert!(c.access_log.as_ref().unwrap().enabled);
        assert_eq!(c.metrics, Some(false));
        let e = serde_json::from_str::<TelemetryConfig>(r#"{"acess_log":{}}"#).unwrap_err();
        assert!(e.to_string().contains("acess_log"), "{e}");
        let (t, provider) = c.build().unwrap();
        assert!(provider.is_none());
        assert_eq!(t.workload().name, "r");
    }
}
