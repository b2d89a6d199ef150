//! In-process `EventBus` over a tokio broadcast channel: every subscriber in
//! the process hears every event of its topic. A subscriber that falls more
//! than the channel's capacity behind skips what it missed (the bus is best
//! effort by contract; state of record is in the repositories).

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use iace_domain::ports::{BusEvent, EventBus, InfraError, Topic};
use tokio::sync::broadcast;

/// The embedded event bus.
#[derive(Debug, Clone)]
pub struct LocalEventBus {
    sender: broadcast::Sender<BusEvent>,
}

impl LocalEventBus {
    /// A bus buffering up to `capacity` events per slow subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

#[async_trait]
impl EventBus for LocalEventBus {
    async fn publish(&self, event: &BusEvent) -> Result<(), InfraError> {
        // No subscriber is not an error: nobody needed to hear it.
        let _ = self.sender.send(event.clone());
        Ok(())
    }

    async fn subscribe(&self, topic: Topic) -> Result<BoxStream<'static, BusEvent>, InfraError> {
        let receiver = self.sender.subscribe();
        let stream = futures::stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) if event.topics().contains(&topic) => return Some((event, receiver)),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(stream.boxed())
    }
}
