//! Operator and developer tooling: the local AWS emulator harness and shared bits of the
//! commands in `src/bin/`.
pub mod backfill;
pub mod cli;
pub mod faults;
pub mod ledger_ops;
pub mod local_stack;
pub mod moto;
pub mod pipeline_demo;
pub mod samples;
pub mod testkit;
