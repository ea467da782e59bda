//! One feed of decoded events shared by every projection of a node.
//!
//! Each projection used to open a feed of its own, so a node running four read models read
//! every event four times: from JetStream that is four consumers, each message fetched,
//! parsed (headers and all), verified and decoded four times, and that per-message work, not
//! the models, was most of a catch-up from JetStream (BENCHMARKS.md, "Read models on fjall").
//! A shared feed reads the source once, from the lowest position any of its projections
//! needs, decodes each event once, and hands every projection the same event (an [`Arc`])
//! from that projection's own position on.
//!
//! What sharing costs, and how it is bounded:
//! - Projections fed together advance together: each has a buffer of [`BUFFER`] events, and
//!   once the slowest one's is full the feed waits for it. The faster models then wait, with
//!   the CPU they no longer spend decoding going to the slow one.
//! - A projection that opens its feed behind what the feed has read (at a start, or after an
//!   interruption) makes the feed read again from there; projections already further along
//!   skip what they hold, as they skip a redelivery.
//! - Rebuilds do not use it ([`crate::EventSource::private`]): a rebuild from position 1
//!   would hold every serving projection back for its whole length.
//! - An error of the source goes to the projections that were waiting for the event it broke
//!   on (each one retries, or stops, exactly as with a feed of its own); the others keep
//!   their place, and the feed reads again from the lowest position still wanted.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::event::ProjectedEvent;
use crate::source::{EventSource, Feed};
use crate::ProjectionError;

/// Events decoded ahead for each projection (they are shared: an `Arc` each).
pub const BUFFER: usize = 4096;

/// What a feed delivers: the next event, decoded once and shared, or why there is none.
pub type Delivery = Result<Arc<ProjectedEvent>, ProjectionError>;

/// The handle of a shared feed: cloned into each projection's [`EventSource::Shared`].
///
/// The task reading the source ends once every handle is dropped (the runners holding them
/// have stopped), and the feeds it serves then end as a closed source does.
#[derive(Debug, Clone)]
pub struct SharedFeed {
    source: Arc<EventSource>,
    subscribe: mpsc::UnboundedSender<Subscribe>,
}

/// A projection asking for the events from `from` on.
#[derive(Debug)]
struct Subscribe {
    from: u64,
    events: mpsc::Sender<Delivery>,
}

/// One projection reading from the shared feed.
#[derive(Debug)]
struct Subscriber {
    /// The next position it needs.
    next: u64,
    events: mpsc::Sender<Delivery>,
}

impl SharedFeed {
    /// Starts the task that reads `source` for every projection given this feed.
    /// Must be called within a tokio runtime.
    pub(crate) fn start(source: EventSource) -> Self {
        let source = Arc::new(source);
        let (subscribe, requests) = mpsc::unbounded_channel();
        tokio::spawn(read_for_all(Arc::clone(&source), requests));
        Self { source, subscribe }
    }

    /// The source underneath (for rebuilds and the head position).
    pub(crate) fn source(&self) -> &EventSource {
        &self.source
    }

    /// The events from `from` on, as they are read for every projection.
    pub(crate) fn open(&self, from: u64) -> Result<mpsc::Receiver<Delivery>, ProjectionError> {
        let (events, receiver) = mpsc::channel(BUFFER);
        self.subscribe
            .send(Subscribe { from, events })
            .map_err(|_| ProjectionError::Feed("the shared event feed has stopped".into()))?;
        Ok(receiver)
    }
}

/// The shared feed's task: one feed of the source at a time, opened at the lowest position a
/// subscriber needs, each event delivered to every subscriber that needs it.
async fn read_for_all(source: Arc<EventSource>, mut requests: mpsc::UnboundedReceiver<Subscribe>) {
    let mut subscribers: Vec<Subscriber> = Vec::new();
    // The open feed and the next position it delivers.
    let mut feed: Option<(Feed, u64)> = None;
    loop {
        if feed.is_none() {
            if let Some(from) = subscribers.iter().map(|s| s.next).min() {
                match source.open(from).await {
                    Ok(opened) => feed = Some((opened, from)),
                    // Each subscriber retries (reopens) after a pause, as with its own feed.
                    Err(e) => pass_on(&mut subscribers, &e, u64::MAX).await,
                }
            }
        }
        let next = match &mut feed {
            None => Next::Request(requests.recv().await),
            Some((opened, _)) => tokio::select! {
                // Subscriptions first: one that needs earlier events reopens the feed before
                // it reads further ahead.
                biased;
                request = requests.recv() => Next::Request(request),
                next = opened.next() => Next::Event(next),
            },
        };
        let next = match next {
            Next::Request(None) => return,
            Next::Request(Some(request)) => {
                if feed.as_ref().is_some_and(|(_, next)| request.from < *next) {
                    feed = None;
                }
                subscribers.push(Subscriber {
                    next: request.from,
                    events: request.events,
                });
                continue;
            }
            Next::Event(next) => next,
        };
        match next {
            Some(Ok(event)) => {
                if let Some((_, next)) = &mut feed {
                    *next = event.position + 1;
                }
                deliver(&mut subscribers, &event).await;
            }
            Some(Err(e)) => {
                let at = feed.as_ref().map_or(0, |(_, next)| *next);
                pass_on(&mut subscribers, &e, at).await;
                feed = None;
            }
            None => {
                // The source closed: so does every subscriber's feed.
                subscribers.clear();
                feed = None;
                if requests.is_closed() {
                    return;
                }
            }
        }
    }
}

/// What the shared feed's task waited for.
enum Next {
    Request(Option<Subscribe>),
    Event(Option<Delivery>),
}

/// Gives `error` to the subscribers waiting for position `at` or an earlier one, and lets
/// them go (each reopens, or stops, as with a feed of its own); the others keep their place.
async fn pass_on(subscribers: &mut Vec<Subscriber>, error: &ProjectionError, at: u64) {
    let mut kept = Vec::with_capacity(subscribers.len());
    for subscriber in subscribers.drain(..) {
        if subscriber.next <= at {
            let _ = subscriber.events.send(Err(error.duplicate())).await;
        } else {
            kept.push(subscriber);
        }
    }
    *subscribers = kept;
}

/// Hands `event` to every subscriber that has not had it, waiting for room in each buffer;
/// forgets the subscribers that are gone.
async fn deliver(subscribers: &mut Vec<Subscriber>, event: &Arc<ProjectedEvent>) {
    let mut i = 0;
    while i < subscribers.len() {
        let subscriber = &mut subscribers[i];
        if event.position >= subscriber.next {
            if subscriber.events.send(Ok(Arc::clone(event))).await.is_err() {
                subscribers.swap_remove(i);
                continue;
            }
            subscriber.next = event.position + 1;
        }
        i += 1;
    }
}
