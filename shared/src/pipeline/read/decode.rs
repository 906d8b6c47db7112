//! Reading a file on a thread of its own: gzip detected by its magic bytes, decompressed and
//! split ([`super::split`]) in bounded chunks, handed on in [`Batch`]es.

use std::io::{self, Cursor, Read};
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender};

use super::s3::TransportError;
pub use super::split::PieceKind;
use super::split::{Fragment, Splitter};
use flate2::bufread::MultiGzDecoder;

/// The first two bytes of every gzip member.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `head` starts with the gzip magic bytes.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC)
}

/// One fragment in a [`Batch`].
#[derive(Debug, Clone)]
pub struct Piece {
    pub kind: PieceKind,
    pub index: u64,
    pub offset: u64,
    pub length: u64,
    pub range: Range<usize>,
}

/// Fragments copied out of the stream, handed to a worker.
#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    pub pieces: Vec<Piece>,
}

impl Batch {
    /// An empty batch with room for `bytes` of fragments.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            pieces: Vec::with_capacity(bytes / 512),
        }
    }

    /// Empties the batch, keeping its allocations (to hand it back for reuse).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pieces.clear();
    }

    /// Empties the batch and gives back its buffer's memory beyond `keep` bytes (a batch that
    /// held a fragment of several MiB must not keep that much while it waits for reuse).
    pub fn clear_and_trim(&mut self, keep: usize) {
        self.clear();
        if self.buf.capacity() > 2 * keep {
            self.buf.shrink_to(keep);
        }
    }

    fn push(&mut self, fragment: Fragment<'_>) {
        let start = self.buf.len();
        self.buf.extend_from_slice(fragment.bytes);
        self.pieces.push(Piece {
            kind: fragment.kind,
            index: fragment.index,
            offset: fragment.offset,
            length: fragment.length,
            range: start..self.buf.len(),
        });
    }
}

/// Sizes of the reading stage.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Bytes read (decompressed) at a time.
    pub chunk_bytes: usize,
    /// A batch is handed over once it holds this many bytes.
    pub batch_bytes: usize,
    /// Longest fragment kept whole.
    pub max_fragment: usize,
}

/// Reading failed for a reason other than the content: the whole object is retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReadFailure(pub String);

/// Whether an I/O error means the content is corrupt (rather than the transport failing).
fn is_content_error(error: &io::Error) -> bool {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<TransportError>())
    {
        return false;
    }
    matches!(
        error.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// Reads `reader` to its end (gunzipping it when it starts with the gzip magic), splits it,
/// and sends batches of fragments to `tx`. Returns the decompressed size. Stops early, without
/// error, when the receiver is gone. Corrupt compressed data ends the stream with an
/// [`PieceKind::Unreadable`] piece after the fragments before it.
pub fn read_and_split(
    reader: impl Read,
    limits: ReadLimits,
    tx: &SyncSender<Batch>,
) -> Result<u64, ReadFailure> {
    let (_keep, pool) = std::sync::mpsc::channel();
    read_and_split_pooled(reader, limits, tx, &pool)
}

/// [`read_and_split`], taking empty batches handed back on `pool` before allocating new ones
/// (large buffers freed and allocated again cost page faults on every batch).
pub fn read_and_split_pooled(
    reader: impl Read,
    limits: ReadLimits,
    tx: &SyncSender<Batch>,
    pool: &Receiver<Batch>,
) -> Result<u64, ReadFailure> {
    read_and_split_with(reader, limits, pool, &mut |batch| tx.send(batch).is_ok())
}

/// [`read_and_split_pooled`] with the hand-off left to `deliver`, which returns `false` to stop
/// reading (the receiver is gone). It may also check the batch itself and put it back on the
/// pool's sender for reuse.
pub fn read_and_split_with(
    mut reader: impl Read,
    limits: ReadLimits,
    pool: &Receiver<Batch>,
    deliver: &mut dyn FnMut(Batch) -> bool,
) -> Result<u64, ReadFailure> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure(e.to_string())),
        }
    }
    let chained = Cursor::new(head[..got].to_vec()).chain(reader);
    let mut source: Box<dyn Read> = if is_gzip(&head[..got]) {
        Box::new(MultiGzDecoder::new(io::BufReader::with_capacity(
            64 * 1024,
            chained,
        )))
    } else {
        Box::new(chained)
    };
    let mut splitter = Splitter::new(limits.max_fragment);
    let mut chunk = vec![0u8; limits.chunk_bytes.max(1024)];
    // Room for a full batch plus the fragment that crosses its end.
    let capacity = limits.batch_bytes + limits.chunk_bytes;
    let mut batch = Batch::with_capacity(capacity);
    // Hands the batch over and, unless it is the last one, takes the next from the pool.
    let mut send = |batch: &mut Batch, last: bool| -> bool {
        let delivered = deliver(std::mem::take(batch));
        if delivered && !last {
            *batch = pool
                .try_recv()
                .unwrap_or_else(|_| Batch::with_capacity(capacity));
        }
        delivered
    };
    loop {
        match source.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                splitter.feed(&chunk[..n], &mut |f| batch.push(f));
                if batch.buf.len() >= limits.batch_bytes && !send(&mut batch, false) {
                    return Ok(splitter.position());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_content_error(&e) => {
                splitter.finish(&mut |f| batch.push(f));
                let start = batch.buf.len();
                batch.buf.extend_from_slice(e.to_string().as_bytes());
                batch.pieces.push(Piece {
                    kind: PieceKind::Unreadable,
                    index: u64::MAX,
                    offset: splitter.position(),
                    length: 0,
                    range: start..batch.buf.len(),
                });
                send(&mut batch, true);
                return Ok(splitter.position());
            }
            Err(e) => return Err(ReadFailure(e.to_string())),
        }
    }
    splitter.finish(&mut |f| batch.push(f));
    if !batch.pieces.is_empty() {
        send(&mut batch, true);
    }
    Ok(splitter.position())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::read::s3::ChannelReader;
    use std::io::Write;
    use tokio::sync::mpsc;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn run(input: Vec<u8>) -> (u64, Vec<(PieceKind, u64, String)>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        let limits = ReadLimits {
            chunk_bytes: 7,
            batch_bytes: 16,
            max_fragment: 1 << 20,
        };
        let size = read_and_split(Cursor::new(input), limits, &tx).unwrap();
        drop(tx);
        let pieces = rx
            .iter()
            .flat_map(|b| {
                b.pieces
                    .iter()
                    .map(|p| {
                        let text = String::from_utf8_lossy(&b.buf[p.range.clone()]).into_owned();
                        (p.kind, p.offset, text)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        (size, pieces)
    }

    #[test]
    fn plain_and_gzipped_give_the_same_fragments() {
        let text = b"{\"a\":1}\n{\"b\":2}{\"c\":".to_vec();
        let expected = vec![
            (PieceKind::Object, 0, "{\"a\":1}".to_string()),
            (PieceKind::Object, 8, "{\"b\":2}".to_string()),
            (PieceKind::Truncated, 15, "{\"c\":".to_string()),
        ];
        assert_eq!(run(text.clone()), (20, expected.clone()));
        assert_eq!(run(gzip(&text)), (20, expected.clone()));
        // Two gzip members back to back are one stream.
        let mut two = gzip(&text[..8]);
        two.extend(gzip(&text[8..]));
        assert_eq!(run(two), (20, expected));
        assert_eq!(run(Vec::new()), (0, vec![]));
        assert_eq!(
            run(vec![b'{']).1,
            vec![(PieceKind::Truncated, 0, "{".into())]
        );
    }

    #[test]
    fn corrupt_gzip_keeps_what_came_before() {
        let text = b"{\"a\":1}\n".repeat(2000);
        let mut data = gzip(&text);
        let cut = data.len() / 2;
        data.truncate(cut);
        let (size, pieces) = run(data);
        let last = pieces.last().unwrap();
        assert_eq!(last.0, PieceKind::Unreadable);
        assert_eq!(last.1, size);
        assert!(pieces.len() > 2);
        assert!(
            pieces[..pieces.len() - 1]
                .iter()
                .all(|p| p.0 == PieceKind::Object || p.0 == PieceKind::Truncated)
        );
    }

    #[test]
    fn transport_errors_fail_the_read() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(b"{\"a\"".to_vec())).unwrap();
        tx.try_send(Err("connection reset".into())).unwrap();
        drop(tx);
        let (btx, _brx) = std::sync::mpsc::sync_channel(10);
        let limits = ReadLimits {
            chunk_bytes: 1024,
            batch_bytes: 1024,
            max_fragment: 1024,
        };
        let err = read_and_split(ChannelReader::new(rx), limits, &btx).unwrap_err();
        assert_eq!(err.0, "connection reset");
    }
}
