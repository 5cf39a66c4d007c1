//! `ponder health`: exits 0 when the server at `--url` answers 200 on `/health` (for container
//! health checks, without curl in the image).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::HealthArgs;

pub fn run(args: HealthArgs) -> anyhow::Result<()> {
    let url = args.url.unwrap_or_else(default_url);
    let rest = url.strip_prefix("http://").context("--url must start with http://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/"), |(a, p)| (a, p));
    let path = if path == "/" { "/health".to_string() } else { format!("/{path}") };
    let address = authority.to_socket_addrs()?.next().context("no address")?;
    let timeout = Duration::from_secs(args.timeout);
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        bail!("{path} answered {status}");
    }
    Ok(())
}

/// The local server's health URL on the port `ponder serve` reads from `PONDER_PORT`.
fn default_url() -> String {
    let port = std::env::var("PONDER_PORT").ok().filter(|port| !port.is_empty()).unwrap_or_else(|| "8000".into());
    format!("http://127.0.0.1:{port}/health")
}
