//! Lookups in flight, shared: checks that resolve the same name at the same
//! time wait on one query to the resolver instead of sending one each (a
//! suite of a thousand checks names a handful of hosts; the VPC resolver
//! answers 1,024 packets a second per network interface, and each lookup's
//! state is kilobytes). Nothing is kept once a lookup finishes, so every
//! run still sees the resolver's answer of that moment.

use crate::outcome::Fault;
use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a lookup gives every check waiting on it.
pub type Answer = Result<Vec<IpAddr>, Fault>;

type Lookup = BoxFuture<'static, Answer>;

/// Each name in flight: the lookup's tag and a weak handle on it.
type Pending = HashMap<String, (u64, WeakShared<Lookup>)>;

/// Names being resolved right now, each with the one lookup for it.
#[derive(Clone, Default)]
pub struct Lookups {
    /// Weak, so a lookup every waiter has given up on is dropped, not
    /// finished later for nobody; tagged, so a finished lookup removes its
    /// own entry and never a newer one for the same name.
    pending: Arc<Mutex<Pending>>,
    next: Arc<AtomicU64>,
}

impl Lookups {
    /// The answer for `host`: joins a lookup in flight, or starts one with
    /// `start`.
    pub async fn resolve(&self, host: &str, start: impl FnOnce() -> Lookup) -> Answer {
        self.join(host, start).await
    }

    /// How many names are being resolved now (what the tests check).
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .values()
            .filter(|(_, weak)| weak.upgrade().is_some())
            .count()
    }

    fn join(&self, host: &str, start: impl FnOnce() -> Lookup) -> Shared<Lookup> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = pending.get(host).and_then(|(_, weak)| weak.upgrade()) {
            return running;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (map, key) = (self.pending.clone(), host.to_string());
        let lookup = start();
        let shared = async move {
            let answer = lookup.await;
            forget(&map, &key, id);
            answer
        }
        .boxed()
        .shared();
        if let Some(weak) = shared.downgrade() {
            pending.insert(host.to_string(), (id, weak));
        }
        shared
    }
}

/// Remove `key`'s entry if it is still lookup `id`'s.
fn forget(map: &Mutex<Pending>, key: &str, id: u64) {
    let mut pending = map.lock().unwrap_or_else(|p| p.into_inner());
    if pending.get(key).is_some_and(|(own, _)| *own == id) {
        pending.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A lookup that counts its starts and answers after `delay`.
    fn counted(starts: &Arc<AtomicUsize>, delay: Duration, last: u8) -> Lookup {
        starts.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            Ok(vec![IpAddr::from([10, 0, 1, last])])
        }
        .boxed()
    }

    #[tokio::test]
    async fn checks_resolving_one_name_at_once_share_one_lookup() {
        let (lookups, starts) = (Lookups::default(), Arc::new(AtomicUsize::new(0)));
        let waits = (0..100).map(|_| {
            lookups.resolve("db.internal", || {
                counted(&starts, Duration::from_millis(50), 12)
            })
        });
        let answers = futures_util::future::join_all(waits).await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(answers
            .iter()
            .all(|a| a.as_deref() == Ok(&[IpAddr::from([10, 0, 1, 12])][..])));
        assert_eq!(lookups.in_flight(), 0, "nothing kept once it finished");
    }

    #[tokio::test]
    async fn a_lookup_after_the_last_finished_asks_again() {
        let (lookups, starts) = (Lookups::default(), Arc::new(AtomicUsize::new(0)));
        let first = lookups
            .resolve("db.internal", || counted(&starts, Duration::ZERO, 12))
            .await;
        let second = lookups
            .resolve("db.internal", || counted(&starts, Duration::ZERO, 13))
            .await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_ne!(
            first, second,
            "the second run sees the resolver's new answer"
        );
    }

    #[tokio::test]
    async fn different_names_are_looked_up_apart() {
        let (lookups, starts) = (Lookups::default(), Arc::new(AtomicUsize::new(0)));
        let a = lookups.resolve("a.internal", || {
            counted(&starts, Duration::from_millis(20), 1)
        });
        let b = lookups.resolve("b.internal", || {
            counted(&starts, Duration::from_millis(20), 2)
        });
        let (a, b) = tokio::join!(a, b);
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn a_lookup_everyone_gave_up_on_is_not_joined() {
        let (lookups, starts) = (Lookups::default(), Arc::new(AtomicUsize::new(0)));
        let abandoned = tokio::time::timeout(
            Duration::from_millis(10),
            lookups.resolve("db.internal", || {
                counted(&starts, Duration::from_secs(60), 12)
            }),
        )
        .await;
        assert!(abandoned.is_err());
        let fresh = lookups
            .resolve("db.internal", || counted(&starts, Duration::ZERO, 13))
            .await;
        assert_eq!(fresh, Ok(vec![IpAddr::from([10, 0, 1, 13])]));
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }
}
