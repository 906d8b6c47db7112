//! Operator and developer tooling: the local AWS emulator harness and shared bits of the
//! commands in `src/bin/`.
pub mod moto;
pub mod pipeline_demo;
pub mod testkit;
