//! `carpd-xdp`: command-line entry point.
//!
//! `carpd-xdp [UCARP options]`, `carpd-xdp [IFACE] [--config FILE]`, or a
//! subcommand: `check-config`, `status`, `monitor`, `init`, `import-ucarp`
//! (and the hidden `generate-assets` used for packaging). Errors are printed as one
//! line and give a non-zero exit; nothing is set up from a configuration
//! that fails to load.

use std::process::ExitCode;

use anyhow::{Context, Result};
use carp_daemon::cli::{Cli, Command};
use carp_daemon::config::{self, Config, Logging};
use carp_daemon::control::find::Target;
use carp_daemon::daemon::{Daemon, Reloader};
use carp_daemon::{
    assets, child, control, daemonize, lateness, logging, monitor, privilege, realtime,
};
use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The chain once: "msg: cause: cause".
            eprintln!("carpd-xdp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// `carpd-xdp status`: the table or JSON of every daemon asked; with
/// `--json` an error is JSON too. Fails (exit 1) when a socket asked did
/// not answer.
fn status(target: &Target, json: bool) -> Result<ExitCode> {
    match control::find::ask(target) {
        Ok(answers) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&answers.to_json())?);
            } else {
                print!("{}", answers.render_table());
            }
            Ok(if answers.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) if json => {
            println!("{}", control::find::error_json(&e));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::CheckConfig(args)) => {
            let config = config::check_file(&args.file)?;
            for w in &config.warnings {
                eprintln!("warning: {}: {}", w.at, w.message);
            }
            print!("{}", config::render(&config));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Status(args)) => {
            let target = match args.socket {
                Some(path) => Target::One(path),
                None => Target::All {
                    run_dir: args.run_dir,
                },
            };
            if let Some(interval) = args.watch {
                control::watch::run(&target, interval, args.json)?;
                return Ok(ExitCode::SUCCESS);
            }
            status(&target, args.json)
        }
        Some(Command::Monitor(args)) => {
            logging::init(&Logging::default(), true)?;
            runtime()?.block_on(monitor::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Init(args)) => {
            config::starter::write(&args)?;
            eprint!("{}", config::starter::next_steps(&args));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::ImportUcarp(args)) => {
            let toml = config::import::run(&args)?;
            match &args.output {
                Some(path) => eprintln!("wrote {}", path.display()),
                None => print!("{toml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::GenerateAssets(args)) => {
            for path in assets::generate(Cli::command(), &args.out)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            // Before anything changes the limit: children get it back.
            child::record_inherited_limits().context("cannot read RLIMIT_RTTIME")?;
            // Variables read as passwords are recorded, never passed on.
            let config: Config = config::from_cli(&cli.run, &child::secret_var)?;
            // Before anything is set up or logged: the first line says what
            // is missing.
            privilege::check(&config.global.status_socket, &config.global.state_dir)?;
            // Reloads read the same file after daemonize's chdir /.
            let mut run_args = cli.run.clone();
            if let Some(path) = run_args.config.as_mut() {
                *path = std::path::absolute(&*path).unwrap_or_else(|_| path.clone());
            }
            // Forking is only safe before the runtime starts its threads.
            if config.global.daemonize {
                daemonize::daemonize()?;
            }
            logging::init(&config.global.log, !config.global.daemonize)?;
            for w in &config.warnings {
                tracing::warn!("{}: {}", w.at, w.message);
            }
            // On the thread that will run the (current-thread) runtime,
            // before the runtime exists: threads it starts later and child
            // processes run SCHED_OTHER (see realtime.rs).
            realtime::apply(config.global.realtime)?;
            let rt = config.global.realtime;
            if rt.priority > 0 || rt.lock_memory {
                tracing::info!(
                    "real-time: SCHED_FIFO priority {} (0: off), memory locked: {}",
                    rt.priority,
                    rt.lock_memory
                );
            }
            let fastest = config.instances.iter().any(|i| i.advbase_secs == 0);
            let (cap_sys_nice, rtprio_limit) = realtime::fifo_allowed();
            let scheduling = lateness::Scheduling {
                priority: rt.priority,
                auto: rt.auto,
                cap_sys_nice,
                rtprio_limit,
            };
            if let Some(warning) = lateness::start_warning(fastest, scheduling) {
                tracing::warn!("{warning}");
            }
            let reload: Reloader =
                Box::new(move || config::from_cli(&run_args, &child::secret_var));
            runtime()?.block_on(async move {
                let daemon = Daemon::start(config).await?;
                daemon.run(reload).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
