//! Shared library of the issuer kit.
pub mod models;
pub mod aws;
pub mod devstack;
pub mod idempotency;
pub mod signature;
pub mod policy;
pub mod telemetry;
pub mod webhook;
