//! The watch cache: every watched object by kind, namespace and name.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;

use super::kinds::{KINDS, Role};

/// `(namespace, name)`.
pub type Key = (String, String);

/// Objects of one kind, with the state of its watch.
#[derive(Debug, Default)]
pub struct KindCache {
    /// The objects.
    pub objects: BTreeMap<Key, Arc<DynamicObject>>,
    /// A relist in progress: objects listed so far, swapped in when the list is complete.
    relist: Option<BTreeMap<Key, Arc<DynamicObject>>>,
    /// True once a complete list arrived.
    pub synced: bool,
    /// The latest watch error, cleared by the next complete list.
    pub error: Option<String>,
}

/// Every watched kind's cache, indexed as [`KINDS`].
#[derive(Debug)]
pub struct Store {
    /// One per kind of [`KINDS`].
    pub kinds: Vec<KindCache>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            kinds: KINDS.iter().map(|_| KindCache::default()).collect(),
        }
    }
}

fn key(o: &DynamicObject) -> Key {
    (
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

/// True when `new` means something else than `old` to the translation. Status and the metadata
/// the API server bumps on every write are left out, so a Node's heartbeat or a status write
/// causes no rebuild.
fn differs(kind: usize, old: &DynamicObject, new: &DynamicObject) -> bool {
    let labels = old.metadata.labels != new.metadata.labels;
    let field = |f: &str| old.data.get(f) != new.data.get(f);
    match KINDS[kind].role {
        Role::Node => labels,
        Role::Pod | Role::Service => labels || field("spec"),
        Role::EndpointSlice => labels || old.data != new.data,
        Role::Document => {
            labels
                || field("spec")
                || old.metadata.generation != new.metadata.generation
                || old.metadata.annotations != new.metadata.annotations
        }
    }
}

impl Store {
    /// Applies one watch event to kind `kind`; true when the translated config may change
    /// (a status-only update is stored but returns false, so writing status causes no rebuild).
    pub fn apply(&mut self, kind: usize, event: Event<DynamicObject>) -> bool {
        let cache = &mut self.kinds[kind];
        match event {
            Event::Init => {
                cache.relist = Some(BTreeMap::new());
                false
            }
            Event::InitApply(o) => {
                let k = key(&o);
                cache.relist.get_or_insert_default().insert(k, Arc::new(o));
                false
            }
            Event::InitDone => {
                let listed = cache.relist.take().unwrap_or_default();
                let changed = !cache.synced
                    || listed.len() != cache.objects.len()
                    || listed
                        .iter()
                        .any(|(k, o)| cache.objects.get(k).is_none_or(|old| differs(kind, old, o)));
                cache.objects = listed;
                cache.synced = true;
                cache.error = None;
                changed
            }
            Event::Apply(o) => {
                let k = key(&o);
                let changed = cache
                    .objects
                    .get(&k)
                    .is_none_or(|old| differs(kind, old, &o));
                cache.objects.insert(k, Arc::new(o));
                changed
            }
            Event::Delete(o) => cache.objects.remove(&key(&o)).is_some(),
        }
    }

    /// True when every kind has listed once or failed to (a kind whose CRD is not installed
    /// must not hold the rest back).
    pub fn settled(&self) -> bool {
        self.kinds.iter().all(|k| k.synced || k.error.is_some())
    }

    /// The objects of a kind.
    pub fn objects(&self, kind: usize) -> &BTreeMap<Key, Arc<DynamicObject>> {
        &self.kinds[kind].objects
    }

    /// The index in [`KINDS`] of the kind with this role (the first, for documents).
    pub fn index(role: Role) -> usize {
        KINDS
            .iter()
            .position(|k| k.role == role)
            .expect("every role is watched")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn index(kind: &str) -> usize {
        KINDS.iter().position(|k| k.kind == kind).unwrap()
    }

    #[test]
    fn only_what_translation_reads_triggers_a_rebuild() {
        let mut store = Store::default();
        let node = |labels: serde_json::Value, heartbeat: &str| {
            object(json!({"metadata": {"name": "n1", "labels": labels},
                          "status": {"conditions": [{"lastHeartbeatTime": heartbeat}]}}))
        };
        let n = index("Node");
        assert!(store.apply(n, Event::Apply(node(json!({"zone": "a"}), "t1"))));
        assert!(!store.apply(n, Event::Apply(node(json!({"zone": "a"}), "t2"))));
        assert!(store.apply(n, Event::Apply(node(json!({"zone": "b"}), "t3"))));

        let vs = |generation: i64, status: &str| {
            object(
                json!({"metadata": {"name": "r", "namespace": "d", "generation": generation},
                          "spec": {"hosts": ["r"]}, "status": {"s": status}}),
            )
        };
        let v = index("VirtualService");
        assert!(store.apply(v, Event::Apply(vs(1, "a"))));
        assert!(!store.apply(v, Event::Apply(vs(1, "b"))), "a status write");
        assert!(store.apply(v, Event::Apply(vs(2, "b"))));
        assert!(store.apply(v, Event::Delete(vs(2, "b"))));
        assert!(!store.apply(v, Event::Delete(vs(2, "b"))), "already gone");
    }

    #[test]
    fn a_relist_replaces_the_kind_whole() {
        let mut store = Store::default();
        let p = index("Pod");
        let pod = |name: &str| object(json!({"metadata": {"name": name, "namespace": "d"}}));
        store.apply(p, Event::Init);
        store.apply(p, Event::InitApply(pod("a")));
        store.apply(p, Event::InitApply(pod("b")));
        assert!(
            store.objects(p).is_empty(),
            "not swapped in before InitDone"
        );
        assert!(store.apply(p, Event::InitDone));
        assert_eq!(store.objects(p).len(), 2);
        // "a" was deleted while the watch was down: the relist drops it.
        store.apply(p, Event::Init);
        store.apply(p, Event::InitApply(pod("b")));
        assert!(store.apply(p, Event::InitDone));
        let names: Vec<_> = store.objects(p).keys().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["b"]);
        // The same list again changes nothing.
        store.apply(p, Event::Init);
        store.apply(p, Event::InitApply(pod("b")));
        assert!(!store.apply(p, Event::InitDone));
        assert!(!store.settled());
    }
}
