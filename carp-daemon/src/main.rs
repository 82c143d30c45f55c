//! `carpd-xdp`: command-line entry point.

use anyhow::Result;
use carp_daemon::monitor::{self, MonitorArgs};
use clap::{Parser, Subcommand};

/// Temporary entry point: the receive-path monitor.
#[derive(Parser)]
#[command(name = "carpd-xdp", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach the receive path and print validated adverts.
    Monitor(MonitorArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Monitor(args) => rt.block_on(monitor::run(args))?,
    }
    Ok(())
}
