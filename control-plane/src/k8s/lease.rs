//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does:
//! the holder renews `renewTime` every third of the lease duration; another replica takes the
//! Lease over once it has seen the same record unchanged for a whole duration (its own clock,
//! so clock skew between replicas does not matter). Writes use the Lease's resourceVersion, so
//! two replicas can never both win.
//!
//! Only the leader writes status; every replica serves xDS from its own watch cache.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

fn lease_resource() -> ApiResource {
    ApiResource {
        group: "coordination.k8s.io".into(),
        version: "v1".into(),
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        plural: "leases".into(),
    }
}

/// Who runs for leader, where.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease: String,
    /// This replica's name (`holderIdentity`).
    pub identity: String,
    /// `leaseDurationSeconds`.
    pub duration: Duration,
}

fn micro_time() -> String {
    // MicroTime: RFC 3339 with microseconds.
    let t = mesh_core::time::rfc3339_utc(std::time::SystemTime::now(), true);
    t.replace('Z', "000Z")
}

/// Runs forever, keeping `leader` true while this replica holds the Lease.
pub async fn run(client: kube::Client, me: Candidate, leader: watch::Sender<bool>) {
    let api: Api<DynamicObject> = Api::namespaced_with(client, &me.namespace, &lease_resource());
    let renew = me.duration / 3;
    // The other holder's record as last seen, and since when (our clock).
    let mut observed: Option<(Value, Instant)> = None;
    loop {
        let won = match try_acquire(&api, &me, &mut observed).await {
            Ok(won) => won,
            Err(e) => {
                tracing::warn!(lease = %me.lease, error = %e, "leader election: cannot reach the Lease");
                false
            }
        };
        leader.send_if_modified(|l| {
            let changed = *l != won;
            if changed {
                tracing::info!(lease = %me.lease, identity = %me.identity, leader = won, "leadership changed");
            }
            *l = won;
            changed
        });
        tokio::time::sleep(renew).await;
    }
}

async fn try_acquire(
    api: &Api<DynamicObject>,
    me: &Candidate,
    observed: &mut Option<(Value, Instant)>,
) -> Result<bool, kube::Error> {
    let now = micro_time();
    let current = api.get_opt(&me.lease).await?;
    let Some(mut lease) = current else {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": me.lease, "namespace": me.namespace},
            "spec": {
                "holderIdentity": me.identity,
                "leaseDurationSeconds": me.duration.as_secs(),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        });
        let lease: DynamicObject =
            serde_json::from_value(lease).map_err(kube::Error::SerdeError)?;
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.data["spec"].clone();
    let holder = spec["holderIdentity"].as_str().unwrap_or_default();
    let ours = holder == me.identity;
    if !ours && !holder.is_empty() {
        // Someone else: theirs until their record has not moved for a whole duration.
        let record = json!([spec["holderIdentity"], spec["renewTime"]]);
        let since = match observed {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                *observed = Some((record, Instant::now()));
                return Ok(false);
            }
        };
        let duration = spec["leaseDurationSeconds"]
            .as_u64()
            .map_or(me.duration, Duration::from_secs);
        if since.elapsed() < duration {
            return Ok(false);
        }
    }
    let s = &mut lease.data["spec"];
    if !ours {
        s["acquireTime"] = json!(now);
        s["leaseTransitions"] = json!(s["leaseTransitions"].as_i64().unwrap_or(0) + 1);
        s["holderIdentity"] = json!(me.identity);
    }
    s["renewTime"] = json!(now);
    s["leaseDurationSeconds"] = json!(me.duration.as_secs());
    match api.replace(&me.lease, &PostParams::default(), &lease).await {
        Ok(_) => {
            *observed = None;
            Ok(true)
        }
        // Another replica wrote first.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
