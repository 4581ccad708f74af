//! Many agents in one process: the simulator's shape, and how memory and CPU per agent
//! are measured (docs/agent.md "Numbers").
//!
//! `cargo run -p bosun-agent --example fleet -- HUB_ADDR [AGENTS] [SECONDS] [SPEED]`
//! runs AGENTS synthetic devices (`fleet-0`, `fleet-1`, …, every tenth with a growing
//! outer-race fault) against a `bosun serve --dev` hub for SECONDS, with a 60 s interval
//! accelerated SPEED times, then prints the process's peak RSS and CPU time. Logs go
//! to stderr (`RUST_LOG`, default `warn`; `info` shows each agent's `skipped` windows).

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hub = args
        .first()
        .ok_or("usage: fleet HUB_ADDR [AGENTS] [SECONDS] [SPEED]")?;
    let agents: usize = args.get(1).map_or(Ok(100), |a| a.parse())?;
    let seconds: u64 = args.get(2).map_or(Ok(10), |a| a.parse())?;
    let speed: f64 = args.get(3).map_or(Ok(60.0), |a| a.parse())?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let dir = std::env::temp_dir().join(format!("bosun-fleet-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = status("VmRSS:");
    let (produced, acknowledged, skipped) = runtime.block_on(async {
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut tasks = Vec::new();
        let mut all_stats = Vec::new();
        for i in 0..agents {
            let id = format!("fleet-{i}");
            let mut options = agent::Options::new(&id, hub);
            options.speed = speed;
            options.buffer_dir = dir.join(&id);
            // Thousands of fsyncs a second on one host measure the disk, not the agents.
            options.buffer_sync = false;
            let spec = if i % 10 == 0 {
                "synthetic:fault=bpfo,onset=0s"
            } else {
                "synthetic"
            };
            let source = agent::parse_source(spec, i as u64 + 1)?;
            all_stats.push(options.stats.clone());
            let mut stopped = stop.subscribe();
            // Starts spread over one real interval, as a real fleet's are: started at
            // once, every agent's window would fall due in the same instant forever.
            let stagger = Duration::from_secs(60)
                .div_f64(speed)
                .mul_f64(i as f64 / agents as f64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(stagger).await;
                agent::run(options, source, async move {
                    let _ = stopped.recv().await;
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let _ = stop.send(());
        for task in tasks {
            task.await??;
        }
        let total = all_stats
            .iter()
            .map(|s| s.snapshot())
            .fold((0, 0, 0), |t, s| {
                (t.0 + s.produced, t.1 + s.acknowledged, t.2 + s.skipped)
            });
        Ok::<_, Box<dyn std::error::Error>>(total)
    })?;
    let left = unsent(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{agents} agents, {seconds} s at speed {speed}: RSS before {} kB, peak {} kB; CPU {}; \
         produced {produced}, acknowledged {acknowledged}, skipped {skipped}, \
         {left} still buffered",
        before.unwrap_or_default(),
        status("VmHWM:").unwrap_or_default(),
        cpu().unwrap_or_default()
    );
    Ok(())
}

/// Records left in all the agents' offline buffers (unacknowledged at shutdown).
fn unsent(dir: &std::path::Path) -> usize {
    let Ok(agents) = std::fs::read_dir(dir) else {
        return 0;
    };
    agents
        .filter_map(|a| std::fs::read_dir(a.ok()?.path()).ok())
        .map(|records| {
            records
                .filter(|r| {
                    r.as_ref()
                        .is_ok_and(|r| r.path().extension().is_some_and(|e| e == "rec"))
                })
                .count()
        })
        .sum()
}

/// A `kB` field of /proc/self/status.
fn status(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User and system CPU time from /proc/self/stat, as text.
fn cpu() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    Some(format!(
        "user {:.2} s, system {:.2} s",
        ticks(11)? / 100.0,
        ticks(12)? / 100.0
    ))
}
