//! Subscriptions: catch up from a position, then follow the log live.
//!
//! A subscription is a task that reads the committed log in pages from its own position and
//! sends events into a bounded channel. When it reaches the committed head it waits for the
//! head to move. There is a single code path for catch-up and live, so the switch-over can
//! neither skip nor repeat an event, and a slow consumer simply makes the task wait on the
//! channel: it falls behind and reads from the log (catch-up) again, it is never dropped.

use tokio::sync::mpsc;

use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{EventFilter, EventStore};

/// Events read per page while catching up.
const PAGE: usize = 512;

/// Events buffered between the reading task and the consumer.
const BUFFER: usize = 1024;

/// A live feed of committed events in global order.
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<Result<RecordedEvent, StoreError>>,
}

impl Subscription {
    /// The next event; `None` once the store is closed. An error ends the subscription.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        self.events.recv().await
    }

    /// The underlying channel (e.g. to wrap it in a stream).
    pub fn into_receiver(self) -> mpsc::Receiver<Result<RecordedEvent, StoreError>> {
        self.events
    }
}

impl EventStore {
    /// Subscribes to the log from `from_position` (inclusive; 0 = from the start).
    /// Must be called within a tokio runtime.
    pub fn subscribe(&self, from_position: u64, filter: EventFilter) -> Subscription {
        let (tx, rx) = mpsc::channel(BUFFER);
        let store = self.clone();
        tokio::spawn(async move {
            let mut head = store.watch_head();
            let mut next = from_position.max(1);
            loop {
                let committed = *head.borrow_and_update();
                while next <= committed {
                    let reader = store.clone();
                    let page_filter = filter.clone();
                    let page = tokio::task::spawn_blocking(move || {
                        reader.read_all(next, PAGE, &page_filter)
                    })
                    .await;
                    let page = match page {
                        Ok(Ok(page)) => page,
                        Ok(Err(e)) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(StoreError::Unavailable(e.to_string()))).await;
                            return;
                        }
                    };
                    for event in page.events {
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    next = page.next_position;
                }
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Subscription { events: rx }
    }
}
