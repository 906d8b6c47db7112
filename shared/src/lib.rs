//! Shared library of the issuer kit.
pub mod aritma;
pub mod aws;
pub mod backtest;
pub mod cloudevents;
pub mod controls;
#[cfg(feature = "dev")]
pub mod devstack;
pub mod event_store;
pub mod journal;
pub mod ledger;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod policy;
pub mod signature;
pub mod telemetry;
pub mod webhook;
