//! Operator and developer tooling: the local AWS emulator harness and shared bits of the
//! operator CLI `issuer-kit` (`commands`, `src/bin/issuer-kit.rs`).
pub mod backfill;
pub mod cli;
pub mod commands;
pub mod faults;
pub mod ledger_ops;
pub mod local_stack;
pub mod moto;
pub mod pipeline_demo;
pub mod samples;
pub mod stack;
pub mod testkit;
