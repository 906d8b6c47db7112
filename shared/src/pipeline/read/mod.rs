//! Step 0, reading: bytes in, fragments out.
//!
//! - [`s3`]: an S3 body as a blocking reader (the only async-to-blocking bridge of reading);
//! - [`decode`]: gunzip when the magic bytes say so, in bounded chunks, into [`decode::Batch`]es;
//! - [`split`]: the byte-level splitter that finds each top-level JSON object.

pub mod decode;
pub mod s3;
pub mod split;
