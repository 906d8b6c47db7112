//! Every sample in `events/` through the local stack: the real function binaries served by
//! `cargo lambda watch` against the emulator, each sample invoked with
//! `cargo lambda invoke --data-file`, each giving its expected result (`tools::samples`).
//! The functions' captured output (their JSON logs) must hold no cardholder data, and
//! carries the EMF metric lines.
//!
//! Needs cargo-lambda on PATH (`make test` puts the project venv first).

use serde_json::Value;
use shared::signature::signer::DevSigner;
use tools::local_stack::{self, LocalStack};
use tools::samples::{EXPECTED, SECRETS, expected};

async fn run_all(stack: &LocalStack) -> anyhow::Result<Vec<String>> {
    let mut seen = Vec::new();
    for sample in stack.samples()? {
        let want = expected(&sample.name)
            .ok_or_else(|| anyhow::anyhow!("no expected result for events/{}", sample.name))?;
        let got = stack.invoke(&sample).await?;
        assert_eq!(
            (got.status, got.body.as_str()),
            (want.status, want.body),
            "events/{} through {}",
            sample.name,
            sample.function
        );
        seen.push(sample.name);
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_gives_its_result_through_cargo_lambda_invoke() -> anyhow::Result<()> {
    local_stack::build_functions().await?;
    let work = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("local-stack-{}", std::process::id()));
    let stack = LocalStack::start(DevSigner::generate_in_memory()?, &work).await?;
    let result = run_all(&stack).await;
    let output = stack.function_output();
    stack.shutdown().await;
    let seen = result?;

    let mut all: Vec<&str> = EXPECTED.iter().map(|e| e.name).collect();
    all.sort_unstable();
    let mut seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    seen.sort_unstable();
    assert_eq!(seen, all, "every expectation has its sample and back");

    for secret in SECRETS {
        assert!(
            !output.contains(secret),
            "{secret:?} leaked into the functions' output"
        );
    }
    // One EMF line per webhook request, per Aritma delivery and per event file / batch.
    let emf: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    for function in local_stack::FUNCTIONS {
        assert!(
            emf.iter().any(|v| v["Function"] == function),
            "no EMF line from {function}"
        );
    }
    Ok(())
}
