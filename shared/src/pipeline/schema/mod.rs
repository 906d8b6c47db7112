//! Step 2's schemas: where they are read from ([`location`]), the cache that compiles and
//! refreshes them ([`registry`]), and the mirror of Pismo's schema tree ([`sync`]).

pub mod location;
pub mod registry;
pub mod sync;

pub use location::{Fetched, SchemaError, SchemaLocation, SchemaRevision, schema_path};
pub use registry::*;
