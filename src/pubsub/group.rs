//! [`SubscriptionGroup`]: one channel subscription, a handler per channel
//! (`subscribe_group(...)` then `handle(channel, fn)`).
//!
//! The router looks the channel's handler up under the routes lock and calls it after
//! letting go of the lock, so a handler may add or remove routes of its own group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::{Event, SubscribeOptions, Subscription};

type RouteFn = Box<dyn FnMut(&Event) + Send>;
type Removed = Box<dyn FnOnce() + Send>;

/// One channel's handler, and what runs once it is gone for good.
struct Route {
    f: Mutex<RouteFn>,
    on_removed: Mutex<Option<Removed>>,
}

impl Route {
    fn call(&self, event: &Event) {
        (lock(&self.f))(event)
    }
}

impl Drop for Route {
    /// The last reference is gone (removed or replaced, and no call of it runs).
    fn drop(&mut self) {
        if let Some(f) = lock(&self.on_removed).take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        }
    }
}

type Routes = Arc<Mutex<HashMap<Bytes, Arc<Route>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A channel subscription that hands each channel's events to that channel's handler.
/// Connection events (`Disconnected`) go to every handler.
pub struct SubscriptionGroup {
    sub: Subscription,
    routes: Routes,
}

impl std::fmt::Debug for SubscriptionGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionGroup")
            .field("sub", &self.sub)
            .finish()
    }
}

impl SubscriptionGroup {
    pub(crate) async fn new(client: &Client, opts: SubscribeOptions) -> Result<Self> {
        if opts.handler.is_some() {
            return Err(Error::invalid(
                "a subscription group routes events itself: give handlers with handle()",
            ));
        }
        let routes: Routes = Arc::default();
        let r = routes.clone();
        let opts = opts.handler(move |event| {
            // Look up under the lock, call without it.
            let targets: Vec<Arc<Route>> = {
                let routes = lock(&r);
                match event {
                    Event::Message(m) => routes.get(&m.channel).cloned().into_iter().collect(),
                    Event::Activated { name, .. } | Event::Reactivated { name, .. } => {
                        routes.get(name).cloned().into_iter().collect()
                    }
                    _ => routes.values().cloned().collect(),
                }
            };
            for route in targets {
                route.call(event);
            }
        });
        let sub = client.subscribe(&[] as &[&[u8]], opts).await?;
        // Closing the group drops the routes (and runs their `on_removed`) after the last
        // handler call.
        let r = routes.clone();
        sub.on_closed(move || drop(std::mem::take(&mut *lock(&r))));
        Ok(SubscriptionGroup { sub, routes })
    }

    /// Handle `channel` with `f` (replacing an earlier handler of it) and subscribe to it.
    pub async fn handle(
        &self,
        channel: impl AsRef<[u8]>,
        f: impl FnMut(&Event) + Send + 'static,
    ) -> Result<()> {
        self.handle_with(channel, f, || {}).await
    }

    /// [`handle`](SubscriptionGroup::handle), and run `on_removed` once the handler is
    /// gone for good: replaced, unhandled or the group closed, after its last call
    /// returned. When this call fails, `on_removed` never runs (the handler is dropped
    /// unused).
    pub async fn handle_with(
        &self,
        channel: impl AsRef<[u8]>,
        f: impl FnMut(&Event) + Send + 'static,
        on_removed: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        let name = Bytes::copy_from_slice(channel.as_ref());
        if self.sub.inherited() {
            // Its routes' lock may be held by the parent's dispatcher thread (`crate::fork`).
            return Err(crate::fork::inherited());
        }
        if self.sub.is_closed() {
            return Err(Error::closed());
        }
        let route = Arc::new(Route {
            f: Mutex::new(Box::new(f)),
            on_removed: Mutex::new(Some(Box::new(on_removed))),
        });
        let replaced = lock(&self.routes).insert(name.clone(), route.clone());
        drop(replaced);
        if let Err(e) = self.sub.add(&[&name[..]]).await {
            // Not subscribed: take the route back (if nobody replaced it meanwhile), unused.
            let mut routes = lock(&self.routes);
            if routes.get(&name).is_some_and(|r| Arc::ptr_eq(r, &route)) {
                routes.remove(&name);
            }
            drop(routes);
            lock(&route.on_removed).take();
            return Err(e);
        }
        Ok(())
    }

    /// Stop handling `channel` and unsubscribe from it. A call of its handler running now
    /// finishes (then its `on_removed` runs).
    ///
    /// Made before a `fork()`, in the child: does nothing (`crate::fork`).
    pub fn unhandle(&self, channel: impl AsRef<[u8]>) {
        if self.sub.inherited() {
            return;
        }
        let name = channel.as_ref();
        self.sub.remove(&[name]);
        let removed = lock(&self.routes).remove(name);
        drop(removed);
    }

    /// The channels handled now.
    pub fn channels(&self) -> Vec<Bytes> {
        if self.sub.inherited() {
            return Vec::new();
        }
        lock(&self.routes).keys().cloned().collect()
    }

    /// The subscription underneath (for stats and names).
    pub fn subscription(&self) -> &Subscription {
        &self.sub
    }

    /// Close the group: unsubscribe, and after it returns no handler runs (from inside a
    /// handler: once that one returns); every route's `on_removed` runs.
    pub fn close(&self) {
        self.sub.close()
    }

    /// Close the group like [`close`](SubscriptionGroup::close), waiting at most `deadline`
    /// for a handler call running on another thread; see [`Subscription::stop`].
    pub fn stop(&self, deadline: Duration) -> Result<()> {
        self.sub.stop(deadline)
    }
}

client_handles! {
    /// A subscription group: one subscription whose channels each get their own handler
    /// ([`SubscriptionGroup::handle`]).
    pub async fn subscribe_group(&self, opts: SubscribeOptions) -> Result<SubscriptionGroup> {
        SubscriptionGroup::new(self, opts).await
    }
}
