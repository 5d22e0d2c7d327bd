//! A response body fed by a blocking thread through a small bounded channel: memory stays flat
//! whatever the size, and a client that goes away closes the channel, which stops the thread.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use tokio::sync::mpsc;

/// The chunks as the thread sends them; `size` when known in advance (`Content-Length`).
pub struct Chunks {
    rx: mpsc::Receiver<Bytes>,
    size: Option<u64>,
}

impl Chunks {
    pub fn new(rx: mpsc::Receiver<Bytes>, size: Option<u64>) -> Chunks {
        Chunks { rx, size }
    }
}

impl MessageBody for Chunks {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        match self.size {
            Some(n) => BodySize::Sized(n),
            None => BodySize::Stream,
        }
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}
