//! Real mode: 20 named workers from a custom profile, all gone within 2 s of the
//! simulator's SIGKILL.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// Pids whose `/proc/<pid>/comm` is one of `names` (zombies count as gone: they hold
/// nothing and only wait to be reaped).
fn running_with_names(names: &[String]) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        let comm = comm.trim_end().to_owned();
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if names.contains(&comm) && !zombie {
            found.push((pid, comm));
        }
    }
    found
}

#[test]
fn twenty_workers_die_with_a_killed_simulator() {
    // Orphaned workers are re-parented to this test process, so that it can reap them.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let tag = format!("p{:05}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("real.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: real\ngroups:\n  - name: \"{tag}w{{index}}\"\n    count: 20\n    cpu: {{ pattern: sine, cores: 0.005, peak: 0.02, period: 10s }}\n    memory: {{ pattern: steady, rssMib: 2 }}\n"
        ),
    )
    .unwrap();
    let mut sim = Command::new(env!("CARGO_BIN_EXE_phoenix-sim"))
        .args([
            "spawn",
            "--profile-file",
            profile.to_str().unwrap(),
            "--max-processes",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let mut announced = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("ready") {
            break;
        }
        let mut words = line.split_whitespace().skip(1);
        let pid: u32 = words.next().unwrap().parse().unwrap();
        announced.push((pid, words.next().unwrap().to_owned()));
    }
    let names: Vec<String> = (0..20).map(|i| format!("{tag}w{i}")).collect();
    let mut found = running_with_names(&names);
    found.sort_by(|a, b| a.1.cmp(&b.1));
    announced.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(found.len(), 20, "all 20 workers are in /proc: {found:?}");
    assert_eq!(found, announced);
    for (pid, _) in &found {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(
            status.contains(&format!("PPid:\t{}", sim.id())),
            "parent is the simulator"
        );
    }

    kill(
        Pid::from_raw(i32::try_from(sim.id()).unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    sim.wait().unwrap();
    let killed = Instant::now();
    let mut left = found.clone();
    while !left.is_empty() && killed.elapsed() < Duration::from_secs(2) {
        for (pid, _) in &left {
            let _ = waitpid(
                Pid::from_raw(i32::try_from(*pid).unwrap()),
                Some(WaitPidFlag::WNOHANG),
            );
        }
        left = running_with_names(&names);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        left.is_empty(),
        "still running {:?} after {:?}",
        left,
        killed.elapsed()
    );
}

#[test]
fn caps_refuse_a_profile_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("big.yaml");
    std::fs::write(&profile, "name: big\ngroups:\n  - name: \"big{index}\"\n    count: 30\n    memory: { rssMib: 100 }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-sim"))
        .args(["spawn", "--profile-file", profile.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(--max-memory-mib)"), "{stderr}");
    assert!(running_with_names(&(0..30).map(|i| format!("big{i}")).collect::<Vec<_>>()).is_empty());
}

#[test]
fn exited_workers_are_counted_once_and_restart_after_their_delay() {
    let tag = format!("q{:05}", std::process::id() % 100_000);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("short.yaml");
    // One worker that does not restart, one that restarts only after 30 s.
    std::fs::write(
        &profile,
        format!(
            "name: short\ngroups:\n  - name: \"{tag}once\"\n    count: 1\n    lifetime: 200ms\n    restart: false\n  - name: \"{tag}late\"\n    count: 1\n    lifetime: 200ms\n    restartDelay: 30s\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-sim"))
        .args([
            "spawn",
            "--profile-file",
            profile.to_str().unwrap(),
            "--duration",
            "1500ms",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("stopped: 2 workers started, 2 exited on their own"),
        "{stderr}"
    );
}

#[test]
fn fields_real_mode_ignores_are_warned_about() {
    let out = Command::new(env!("CARGO_BIN_EXE_phoenix-sim"))
        .args([
            "spawn",
            "--profile-file",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/custom-profile.yaml"
            ),
            "--max-processes",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: real mode ignores groups[1].commandLine:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: real mode ignores chaos:"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid --max-processes:"), "{stderr}");
}
