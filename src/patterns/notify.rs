//! Wake-ups for the library's own waits (`cache_wait`, lock waiters): one subscription per
//! client, whose channels are added while somebody waits on them and removed after. The
//! writers of this library publish on those channels, so a waiter wakes at once instead of
//! polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Notify, OnceCell};

use crate::client::Client;
use crate::error::Result;
use crate::pubsub::{Event, SubscribeOptions, Subscription};

type Waiters = Arc<Mutex<HashMap<Bytes, (usize, Arc<Notify>)>>>;

pub(crate) struct Notifier {
    sub: Subscription,
    waiters: Waiters,
}

/// The lazily started notifier of a client.
type NotifierCell = OnceCell<Arc<Notifier>>;

/// Interest in one channel; dropping it removes the channel when nobody else waits on it.
pub(crate) struct Interest<'a> {
    notifier: &'a Notifier,
    channel: Bytes,
    pub(crate) notify: Arc<Notify>,
}

impl Drop for Interest<'_> {
    fn drop(&mut self) {
        // Under the waiters lock, so that a new waiter's registration cannot interleave.
        let mut w = self
            .notifier
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let last = match w.get_mut(&self.channel) {
            Some((n, _)) => {
                *n -= 1;
                *n == 0
            }
            None => false,
        };
        if last {
            w.remove(&self.channel);
            self.notifier.sub.remove(&[&self.channel[..]]);
        }
    }
}

impl Notifier {
    async fn start(client: &Client) -> Result<Notifier> {
        let waiters: Waiters = Arc::default();
        let w = waiters.clone();
        let mut opts = SubscribeOptions::default().batch_handler(move |events| {
            let w = w.lock().unwrap_or_else(|p| p.into_inner());
            for e in events {
                let name = match e {
                    Event::Message(m) => &m.channel,
                    // After a reconnect a write may have been missed: wake everyone to re-check.
                    Event::Reactivated { name, .. } => name,
                    _ => continue,
                };
                if let Some((_, n)) = w.get(name) {
                    n.notify_waiters();
                }
            }
        });
        opts.inline = true;
        let sub = client.subscribe(&[] as &[&[u8]], opts).await?;
        Ok(Notifier { sub, waiters })
    }

    /// Register interest in `channel` (subscribing if it is the first), confirmed by the
    /// server before this returns, so no publish after it is missed.
    pub(crate) async fn interest(&self, channel: Bytes) -> Result<Interest<'_>> {
        let (first, notify) = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let entry = w
                .entry(channel.clone())
                .or_insert_with(|| (0, Arc::new(Notify::new())));
            entry.0 += 1;
            (entry.0 == 1, entry.1.clone())
        };
        // Outside the waiters lock: registering can run the inline handler right here (an
        // `Activated` for a name still active), and that handler takes the lock. No race:
        // the entry was created under the lock, and only the last interest in it removes it.
        if first && let Err(e) = self.sub.register(&[&channel[..]]) {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((n, _)) = w.get_mut(&channel) {
                *n -= 1;
                if *n == 0 {
                    w.remove(&channel);
                }
            }
            return Err(e);
        }
        let interest = Interest {
            notifier: self,
            channel: channel.clone(),
            notify,
        };
        // Whoever subscribed it, wait until the server confirmed it.
        self.sub.confirm(std::slice::from_ref(&channel)).await?;
        Ok(interest)
    }
}

impl Client {
    pub(crate) async fn notifier(&self) -> Result<Arc<Notifier>> {
        self.extension::<NotifierCell>()
            .get_or_try_init(|| async { Notifier::start(self).await.map(Arc::new) })
            .await
            .cloned()
    }
}
