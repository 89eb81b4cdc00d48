//! The injection webhook's server (HTTPS, `POST /inject`) and the leader's upkeep of the
//! MutatingWebhookConfiguration's `caBundle`.
//!
//! The serving certificate is issued by the control plane's own CA for the Service's DNS names
//! and renewed before it expires; the API server trusts it through `caBundle`, which the chart
//! leaves empty and the leader sets to the CA root (again after every `helm upgrade`, within
//! [`RESYNC`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::inject::Injector;

/// How often the leader checks the `caBundle` again.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Serves the webhook on `listener` over TLS until the task is aborted.
pub fn serve(listener: TcpListener, tls: TlsAcceptor, injector: Arc<Injector>) -> JoinHandle<()> {
    let router = Router::new()
        .route("/inject", post(inject))
        .with_state(injector);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, remote)) = listener.accept().await else {
                continue;
            };
            let (tls, router) = (tls.clone(), router.clone());
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "webhook: TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    })
}

async fn inject(State(injector): State<Arc<Injector>>, Json(review): Json<Value>) -> Json<Value> {
    let answer = injector.review(&review);
    let patched = answer["response"]["patch"].is_string();
    tracing::info!(
        namespace = review["request"]["namespace"].as_str().unwrap_or_default(),
        pod = review["request"]["object"]["metadata"]["generateName"]
            .as_str()
            .or(review["request"]["object"]["metadata"]["name"].as_str())
            .unwrap_or_default(),
        injected = patched,
        "injection webhook"
    );
    Json(answer)
}

fn webhook_configs() -> ApiResource {
    ApiResource {
        group: "admissionregistration.k8s.io".into(),
        version: "v1".into(),
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "MutatingWebhookConfiguration".into(),
        plural: "mutatingwebhookconfigurations".into(),
    }
}

/// While leader, keeps every webhook's `clientConfig.caBundle` of the MutatingWebhookConfiguration
/// `name` equal to `root_pem`.
pub async fn keep_ca_bundle(
    client: kube::Client,
    name: String,
    root_pem: String,
    mut leader: watch::Receiver<bool>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &webhook_configs());
    let bundle = serde_json::to_value(ByteString(root_pem.into_bytes())).unwrap_or_default();
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            r = leader.changed() => if r.is_err() { return },
            _ = resync.tick() => {}
        }
        if !*leader.borrow_and_update() {
            continue;
        }
        if let Err(e) = set_bundle(&api, &name, &bundle).await {
            tracing::warn!(webhook = %name, error = %e, "cannot set the webhook's caBundle");
        }
    }
}

async fn set_bundle(
    api: &Api<DynamicObject>,
    name: &str,
    bundle: &Value,
) -> Result<(), kube::Error> {
    let Some(mut config) = api.get_opt(name).await? else {
        tracing::warn!(webhook = %name, "MutatingWebhookConfiguration not found; injection is not registered");
        return Ok(());
    };
    let mut changed = false;
    for w in config.data["webhooks"].as_array_mut().into_iter().flatten() {
        if w["clientConfig"]["caBundle"] != *bundle {
            w["clientConfig"]["caBundle"] = bundle.clone();
            changed = true;
        }
    }
    if changed {
        api.replace(name, &PostParams::default(), &config).await?;
        tracing::info!(webhook = %name, "webhook caBundle set to the CA root");
    }
    Ok(())
}
