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

/// True when `new` means something else than `old` to the translation: anything but `status`
/// and the metadata the API server bumps on every write.
fn differs(kind: usize, old: &DynamicObject, new: &DynamicObject) -> bool {
    if KINDS[kind].role != Role::Document {
        return old.data != new.data || old.metadata.labels != new.metadata.labels;
    }
    old.data.get("spec") != new.data.get("spec")
        || old.metadata.generation != new.metadata.generation
        || old.metadata.annotations != new.metadata.annotations
        || old.metadata.labels != new.metadata.labels
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
