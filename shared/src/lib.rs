//! Shared library of the issuer kit.

/// The decision webhooks' allocator: each webhook binary (and `bench-webhooks`) declares
/// `#[global_allocator] static ALLOCATOR: shared::WebhookAllocator = shared::WebhookAllocator;`.
///
/// Measured against glibc's malloc (docs/benchmarks.md, "Where the Full balance webhook's time
/// went"): a decision allocates a few hundred small blocks (the typed request, its journal
/// inputs, the answer), and glibc's `malloc`/`free`/`malloc_consolidate` were a tenth of its
/// CPU; with mimalloc the Full balance p50 went 38.8 -> 33.6 us and its p90 64 -> 37-48 us.
/// The event pipeline keeps glibc: its worst-case memory bound relies on glibc returning
/// buffers of 1 MiB or more at once (`MALLOC_MMAP_THRESHOLD_`, docs/benchmarks.md).
pub use mimalloc::MiMalloc as WebhookAllocator;
pub mod aritma;
pub mod aws;
pub mod backtest;
pub mod clock;
pub mod cloudevents;
pub mod controls;
#[cfg(feature = "dev")]
pub mod devstack;
pub mod event_store;
pub mod journal;
pub mod ledger;
pub mod metrics;
pub mod models;
pub mod outcomes;
pub mod pipeline;
pub mod policy;
pub mod reconcile;
pub mod settings;
pub mod signals;
pub mod signature;
pub mod table;
pub mod telemetry;
pub mod tls;
pub mod webhook;
