//! `keyplan`: parse the configuration, open the store, bind, serve.

use anyhow::Context;
use clap::Parser;
use keyplan::config::{
    Cli, ClusterCommand, Command, LogFormat, ProjectionsCommand, ServeArgs, TokenCommand,
};
use keyplan::Node;
use tokio::net::TcpListener;

/// jemalloc instead of glibc's allocator: profiles of appends and rebuilds spent about a quarter
/// of all CPU in glibc's malloc and free (`malloc_consolidate`, `unlink_chunk`); with jemalloc
/// the write path alone did +35 % at 64 clients × 16 events and rebuilds took a third less time
/// (A/B in BENCHMARKS.md). mimalloc was tried first and made batched appends slower.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    return_freed_memory_on_time();
    let cli = Cli::parse();
    // A node logs what it does; a command run by a person prints its result and, on stderr,
    // only what went wrong (not the stores' "creating database" lines of a seed, say).
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Recover(_) => "info,lsm_tree=warn",
        _ => "warn",
    };
    init_logging(cli.log_format, default_filter);
    match cli.command {
        Command::Serve(args) => {
            let outcome = serve(*args).await;
            // Exit here rather than by returning: returning drops the runtime, which waits for
            // every blocking task, and a shutdown that hit its bound may have left one stuck
            // (that is why it hit the bound). A supervisor restarts on a non-zero status.
            match outcome {
                Ok(()) => std::process::exit(0),
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "keyplan stopped with an error; exiting with status 1"
                    );
                    std::process::exit(1)
                }
            }
        }
        Command::Projections(ProjectionsCommand::Status { json, node }) => {
            print!("{}", keyplan::admin::status(&node, json).await?);
            Ok(())
        }
        Command::Cluster(ClusterCommand::Status {
            shard_map,
            json,
            node,
        }) => {
            let (text, healthy) = keyplan::cluster_status::status(&shard_map, &node, json).await?;
            print!("{text}");
            if !healthy {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Projections(ProjectionsCommand::Rebuild { names, node }) => {
            Ok(keyplan::admin::rebuild(&node, names).await?)
        }
        Command::Projections(ProjectionsCommand::Seed {
            data_dir,
            shard,
            node,
        }) => {
            print!(
                "{}",
                keyplan::admin::seed(&node, &data_dir, shard.as_deref()).await?
            );
            Ok(())
        }
        Command::Health(args) => {
            let (serving, line) = keyplan::admin::health(&args).await;
            println!("{line}");
            if !serving {
                std::process::exit(1)
            }
            Ok(())
        }
        Command::Token(TokenCommand::Mint(args)) => {
            let token = keyplan_auth::mint::mint_hs256(&args.secret_file, &args.request())?;
            println!("{token}");
            Ok(())
        }
        Command::Kam(command) => match keyplan::cli::run(*command).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // In words, without a backtrace-like chain: the error says what to do.
                eprintln!("keyplan: {e}");
                std::process::exit(1)
            }
        },
        Command::Recover(args) => {
            let report = keyplan::recover::recover(&args)
                .await
                .context("recovery failed; the data directory was left as it was")?;
            print!("{report}");
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let node = Node::start(&args).await.with_context(|| {
        format!(
            "starting a {} node over {}",
            args.role.as_str(),
            args.data_dir.display()
        )
    })?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    if let Some(metrics_address) = args.metrics_listen {
        let metrics_listener = TcpListener::bind(metrics_address)
            .await
            .with_context(|| format!("binding the metrics listener {metrics_address}"))?;
        let bound = metrics_listener.local_addr()?;
        tokio::spawn(keyplan::metrics::serve(metrics_listener, node.metrics()));
        // As the line below, for the metrics listener.
        println!("keyplan metrics on {bound}");
    }
    // Tests and scripts read this line to find the port when listening on port 0.
    println!("keyplan listening on {address}");
    // ... and this one to know that the read models serve too (an all-in-one node serves
    // its log first and loads its read models meanwhile).
    if let Some(mut ready) = node.read_models_ready() {
        tokio::spawn(async move {
            if ready.wait_for(|ready| *ready).await.is_ok() {
                println!("keyplan read models ready");
            }
        });
    }
    tracing::info!(
        %address,
        role = args.role.as_str(),
        data_dir = %args.data_dir.display(),
        head = node.store().map(|s| s.head()),
        "serving"
    );
    node.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped; every acknowledged append is on disk");
    Ok(())
}

/// Log lines to stderr, filtered by `KEYPLAN_LOG` (tracing's filter syntax), else by
/// `default_filter`. A node's default keeps lsm-tree (fjall's trees) at warn: it logs every
/// table it writes and recovers at info, two lines a second under load from the position index
/// alone.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYPLAN_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal, not in a journal or a log file.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // The current span and its parents go with every line, so a collector can group the
        // lines of one request by its request id.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// Starts jemalloc's background threads, which return freed pages to the system once they
/// have been unused for its decay time (10 s). Without them jemalloc purges only while the
/// same arena allocates, so the memory a burst freed (a rebuild's old generation, a load's
/// buffers) stayed in the node's RSS for as long as it was idle.
fn return_freed_memory_on_time() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("keyplan: jemalloc's background threads did not start ({e}); freed memory returns to the system later");
    }
}
