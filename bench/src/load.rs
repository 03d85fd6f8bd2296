//! A small closed-loop load generator: N clients, each sending its next request
//! as soon as the last one is answered, for a fixed time.

use std::time::{Duration, Instant};

use anyhow::bail;

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

/// What to send.
#[derive(Clone)]
pub enum Request {
    Me { url: String, token: String },
    Token { url: String, email: String, password: String },
}

impl Request {
    async fn send(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let response = match self {
            Self::Me { url, token } => http.get(url).bearer_auth(token).send().await?,
            Self::Token { url, email, password } => {
                let body = format!("username={}&password={}", urlencode(email), urlencode(password));
                http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await?
            }
        };
        if response.status() != 200 {
            bail!("{} answered {}", response.url(), response.status());
        }
        response.bytes().await?;
        Ok(())
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `clients` concurrent closed loops of `request` for `duration`.
pub async fn run(request: Request, clients: usize, duration: Duration) -> anyhow::Result<Run> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, request) = (http.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                request.send(&http).await?;
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
