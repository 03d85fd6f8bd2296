//! A small closed-loop load generator in the manner of wrk: N clients, each on
//! its own kept-alive connection, sending prepared request bytes and reading the
//! answer with no HTTP library in between, so the generator costs the shared
//! cores as little as possible and the same load can be put on any server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub requests: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }
}

/// One prepared HTTP/1.1 request to a server.
#[derive(Clone)]
pub struct Request {
    addr: SocketAddr,
    bytes: Vec<u8>,
}

impl Request {
    /// `GET path`, with a bearer token when one is given.
    pub fn get(base_url: &str, path: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let addr = address(base_url)?;
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}\r\n");
        Ok(Self { addr, bytes: head.into_bytes() })
    }

    /// `POST path` with a URL-encoded form.
    pub fn post_form(base_url: &str, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Self> {
        let addr = address(base_url)?;
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect();
        let body = body.join("&");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        Ok(Self { addr, bytes: head.into_bytes() })
    }
}

fn address(base_url: &str) -> anyhow::Result<SocketAddr> {
    let authority = base_url.strip_prefix("http://").context("a plain http:// base URL")?;
    authority.trim_end_matches('/').parse().with_context(|| format!("{base_url} names no IP address and port"))
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One kept-alive connection sending a request at a time.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buffer: Vec::with_capacity(4096) })
    }

    /// Sends `request` and reads its whole answer, which must be a `200`: its body.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<&[u8]> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let (head, length) = loop {
            let read = self.stream.read_buf(&mut self.buffer).await?;
            ensure!(read > 0, "the server closed the connection");
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break (end + 4, content_length(&self.buffer[..end])?);
            }
        };
        while self.buffer.len() < head + length {
            ensure!(self.stream.read_buf(&mut self.buffer).await? > 0, "the server closed the connection");
        }
        if !self.buffer.starts_with(b"HTTP/1.1 200 ") {
            let status = String::from_utf8_lossy(&self.buffer[..self.buffer.len().min(12)]).into_owned();
            bail!("the server answered {status:?}");
        }
        Ok(&self.buffer[head..head + length])
    }
}

fn content_length(head: &[u8]) -> anyhow::Result<usize> {
    let head = std::str::from_utf8(head)?;
    let line = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length")))
        .context("an answer without content-length")?;
    Ok(line.1.trim().parse()?)
}

/// Runs one closed loop per refresh token in `chains` for `duration`, each trading its token
/// for the next at `POST /token` (`grant_type=refresh_token`) and going on with the one it got.
pub async fn run_refresh_chains(base_url: &str, chains: Vec<String>, duration: Duration) -> anyhow::Result<Run> {
    let addr = address(base_url)?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for mut token in chains {
        let base_url = base_url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await?;
            let mut latencies = Vec::with_capacity(1 << 14);
            while Instant::now() < deadline {
                let request = Request::post_form(
                    &base_url,
                    "/token",
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )?;
                let sent = Instant::now();
                let body = connection.exchange(&request.bytes).await?;
                latencies.push(sent.elapsed());
                let grant: serde_json::Value = serde_json::from_slice(body)?;
                token = grant["refresh_token"].as_str().context("a refresh token in the answer")?.to_owned();
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Run { requests: latencies.len(), elapsed: started.elapsed(), latencies })
}

/// Runs `clients` concurrent closed loops of `request` for `duration`.
pub async fn run(request: Request, clients: usize, duration: Duration) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(request.addr).await?;
            let mut latencies = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let sent = Instant::now();
                connection.exchange(&request.bytes).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Run { requests: latencies.len(), elapsed: started.elapsed(), latencies })
}
