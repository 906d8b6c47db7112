//! `issuer-kit`: the operator commands in one binary (`tools::commands`). Install it with
//! `make install`; `issuer-kit --help` lists the commands, output formats and exit codes.

use std::process::ExitCode;

use clap::Parser as _;
use tools::commands::{Cli, from_stack, main as run};

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(status) = from_stack().await {
        return status;
    }
    run(Cli::parse()).await
}
