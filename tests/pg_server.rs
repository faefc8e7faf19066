//! A throwaway PostgreSQL server for one test: a cluster initialised in a temporary
//! folder, listening on a free loopback port, stopped when the guard drops. Needs the
//! Debian package `postgresql` (`.ci/run` installs it); as root, the server runs as
//! the `postgres` user, since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser's password: checked by scram-sha-256 over TCP, so the tests also see
/// that a password in the URL never shows in the tool's output.
pub const PASSWORD: &str = "pw-Secret-4242";

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// The newest installed server's binaries.
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL server binaries not found in /usr/lib/postgresql: install the Debian package `postgresql` (.ci/run does)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the server's user: `postgres` when the tests run as root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn check(what: &str, out: std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    pub fn start() -> PgServer {
        let bin = server_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            check(
                "chown",
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.path())
                    .output()
                    .unwrap(),
            );
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .output()
                .unwrap();
        }
        let data = dir.path().join("data");
        check(
            "initdb",
            as_server_user(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--auth=scram-sha-256",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .output()
                .unwrap(),
        );
        // A port taken between free_port and the start is retried.
        for _ in 0..5 {
            let port = free_port();
            let started = as_server_user(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
                    dir.path().display()
                ))
                .args(["-w", "-t", "60", "start"])
                .output()
                .unwrap();
            if started.status.success() {
                return PgServer { dir, bin, port };
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
    }

    /// A URL with the superuser's password.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// A client for the test's own queries.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connects")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
