//! [`SubscriptionGroup`]: one channel subscription, a handler per channel
//! (`subscribe_group(...)` then `handle(channel, fn)`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::{Event, SubscribeOptions, Subscription};

type Route = Box<dyn FnMut(&Event) + Send>;

/// A channel subscription that hands each channel's events to that channel's handler.
/// Connection events (`Disconnected`) go to every handler.
pub struct SubscriptionGroup {
    sub: Subscription,
    routes: Arc<Mutex<HashMap<Bytes, Route>>>,
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
        let routes: Arc<Mutex<HashMap<Bytes, Route>>> = Arc::default();
        let r = routes.clone();
        let opts = opts.handler(move |event| {
            let mut routes = r.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Event::Message(m) => {
                    if let Some(f) = routes.get_mut(&m.channel) {
                        f(event);
                    }
                }
                Event::Activated { name, .. } | Event::Reactivated { name, .. } => {
                    if let Some(f) = routes.get_mut(name) {
                        f(event);
                    }
                }
                _ => {
                    for f in routes.values_mut() {
                        f(event);
                    }
                }
            }
        });
        let sub = client.subscribe::<&[u8]>(&[], opts).await?;
        Ok(SubscriptionGroup { sub, routes })
    }

    /// Handle `channel` with `f` (replacing an earlier handler of it) and subscribe to it.
    pub async fn handle(
        &self,
        channel: impl AsRef<[u8]>,
        f: impl FnMut(&Event) + Send + 'static,
    ) -> Result<()> {
        let name = Bytes::copy_from_slice(channel.as_ref());
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), Box::new(f));
        self.sub.add(&[name]).await
    }

    /// Stop handling `channel` and unsubscribe from it.
    pub fn unhandle(&self, channel: impl AsRef<[u8]>) {
        let name = channel.as_ref();
        self.sub.remove(&[name]);
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// The subscription underneath (for stats and names).
    pub fn subscription(&self) -> &Subscription {
        &self.sub
    }
}

impl Client {
    /// A subscription group: one subscription whose channels each get their own handler
    /// ([`SubscriptionGroup::handle`]).
    pub async fn subscribe_group(&self, opts: SubscribeOptions) -> Result<SubscriptionGroup> {
        SubscriptionGroup::new(self, opts).await
    }
}
