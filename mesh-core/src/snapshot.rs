//! `Snapshot<T>`: the one live-config primitive.
//!
//! Readers on the request path call [`Snapshot::load`], a lock-free arc-swap read; tasks that must
//! react to a change hold a [`Watcher`] and await [`Watcher::changed`]. A writer replaces the whole
//! value in one [`Snapshot::store`], so readers never see half of an update: anything that must change
//! together belongs in one `T`.

use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;

/// A live value shared between one or more writers and many readers.
///
/// Cloning a `Snapshot` is cheap and yields a handle to the same cell.
///
/// ```
/// use mesh_core::Snapshot;
/// let routes = Snapshot::new(vec!["v1"]);
/// let reader = routes.clone();
/// routes.store(vec!["v1", "v2"]);
/// assert_eq!(reader.load().len(), 2);
/// ```
pub struct Snapshot<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    cell: ArcSwap<T>,
    // The version counter: bumped on every store so watchers wake.
    tx: watch::Sender<u64>,
}

impl<T> Snapshot<T> {
    /// Creates a snapshot holding `value` at version 0.
    pub fn new(value: T) -> Self {
        Self::from_arc(Arc::new(value))
    }

    /// Creates a snapshot holding an already shared value.
    pub fn from_arc(value: Arc<T>) -> Self {
        let (tx, _rx) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                cell: ArcSwap::new(value),
                tx,
            }),
        }
    }

    /// Reads the current value without locking. Cheap enough for every request; hold the guard
    /// only for the duration of one request.
    #[inline]
    pub fn load(&self) -> Guard<Arc<T>> {
        self.inner.cell.load()
    }

    /// Reads the current value as an owned `Arc`, for values kept across await points.
    pub fn load_full(&self) -> Arc<T> {
        self.inner.cell.load_full()
    }

    /// Replaces the value and wakes every watcher.
    pub fn store(&self, value: T) {
        self.store_arc(Arc::new(value));
    }

    /// Replaces the value with an already shared one and wakes every watcher.
    pub fn store_arc(&self, value: Arc<T>) {
        self.inner.cell.store(value);
        self.inner.tx.send_modify(|v| *v += 1);
    }

    /// The number of stores so far.
    pub fn version(&self) -> u64 {
        *self.inner.tx.borrow()
    }

    /// A watcher that wakes on every store after this call.
    pub fn watch(&self) -> Watcher<T> {
        Watcher {
            snapshot: self.clone(),
            rx: self.inner.tx.subscribe(),
        }
    }
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Default> Default for Snapshot<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version())
            .field("value", &*self.load())
            .finish()
    }
}

/// Waits for changes of a [`Snapshot`].
pub struct Watcher<T> {
    snapshot: Snapshot<T>,
    rx: watch::Receiver<u64>,
}

impl<T> Watcher<T> {
    /// Waits until the snapshot is stored again, then returns the new value. Several stores in a
    /// row may be seen as one change; the value returned is always the newest.
    pub async fn changed(&mut self) -> Arc<T> {
        // The sender lives inside the snapshot this watcher holds, so it cannot be dropped.
        let _ = self.rx.changed().await;
        self.snapshot.load_full()
    }

    /// The snapshot this watcher follows.
    pub fn snapshot(&self) -> &Snapshot<T> {
        &self.snapshot
    }
}

impl<T> fmt::Debug for Watcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("seen", &*self.rx.borrow())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watcher_sees_the_newest_value() {
        let snap = Snapshot::new(1);
        let mut w = snap.watch();
        snap.store(2);
        snap.store(3);
        assert_eq!(*w.changed().await, 3);
        assert_eq!(snap.version(), 2);
    }

    #[tokio::test]
    async fn readers_keep_their_value_while_a_writer_replaces_it() {
        let snap = Snapshot::new(String::from("old"));
        let held = snap.load_full();
        snap.store(String::from("new"));
        assert_eq!(*held, "old");
        assert_eq!(**snap.load(), "new");
    }
}
