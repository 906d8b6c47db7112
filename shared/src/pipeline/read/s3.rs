//! The only bridge from async to blocking in reading: an S3 object's body, pumped by a tokio
//! task into a bounded channel, read as a blocking [`Read`] by the reading thread.
//!
//! ```text
//!   GetObject body ──(pump, spawned by the engine)──▶ mpsc(8 chunks) ──▶ ChannelReader (reading thread)
//! ```

use std::io::{self, Read};

use aws_sdk_s3::error::DisplayErrorContext;
use tokio::sync::mpsc;

/// Marks an I/O error of the transport (not of the content): the read is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// A blocking reader over chunks sent by an async task (an S3 body).
#[derive(Debug)]
pub struct ChannelReader {
    rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Result<Vec<u8>, String>>) -> Self {
        Self {
            rx,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.current.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(bytes)) => {
                    self.current = bytes;
                    self.at = 0;
                }
                Some(Err(message)) => return Err(io::Error::other(TransportError(message))),
            }
        }
        let rest = &self.current[self.at..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

/// Opens one version of `bucket`/`key` (the current one when `version_id` is `None`): its body
/// as a blocking reader, and the future that pumps the body into it (the engine spawns it, and
/// aborts it when the reader is done with). The error is the SDK's, with its context.
pub async fn open(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<(ChannelReader, impl Future<Output = ()> + Send + 'static), String> {
    let output = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    let mut body = output.body;
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, String>>(8);
    let pump = async move {
        loop {
            let next = match body.try_next().await {
                Ok(Some(bytes)) => Ok(bytes.to_vec()),
                Ok(None) => break,
                Err(e) => Err(DisplayErrorContext(&e).to_string()),
            };
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                break;
            }
        }
    };
    Ok((ChannelReader::new(rx), pump))
}
