//! How a request reaches the server: directly, or through the proxy the environment names.
//!
//! A server on this machine (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`) is always
//! reached directly, whatever the proxy variables say: a password or token sent to it must
//! not leave the machine, and plain `http://` is allowed there only because it does not. A
//! server elsewhere goes through the proxy of its scheme (`https_proxy`, `http_proxy`, then
//! `all_proxy`; lower case first, as curl reads them) unless `no_proxy` names it.

use std::net::IpAddr;

use url::{Host, Url};

/// The proxy a request goes through, as the messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's URL, as given (credentials included): what the client connects with.
    pub url: Url,
    /// The environment variable it came from.
    pub variable: &'static str,
}

impl Proxy {
    /// The proxy's URL without credentials, for messages.
    pub fn shown(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.as_str().trim_end_matches('/').to_owned()
    }
}

/// Why the proxy settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable} is set to {value:?}, which is not a proxy URL (e.g. http://proxy.example.com:3128)")]
pub struct BadProxy {
    pub variable: &'static str,
    pub value: String,
}

/// `text` without what could be a password in it: the part of its authority before an `@`.
fn without_credentials(text: &str) -> String {
    let (scheme, rest) = text.split_once("://").map_or(("", text), |(s, r)| (s, r));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let hidden = if host.len() < authority.len() { "…@" } else { "" };
    match scheme {
        "" => format!("{hidden}{host}{tail}"),
        scheme => format!("{scheme}://{hidden}{host}{tail}"),
    }
}

/// Whether `url` names this machine: `localhost` and `*.localhost` (RFC 6761: they resolve to
/// loopback, and loom makes sure they do), 127.0.0.0/8, `[::1]`, those addresses mapped into
/// IPv6, and the unspecified addresses (`0.0.0.0`, `[::]`), which Linux connects to loopback.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => is_localhost_name(name),
        Some(Host::Ipv4(ip)) => is_this_machine(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_this_machine(IpAddr::V6(ip)),
        None => false,
    }
}

/// `localhost`, `LocalHost.`, `api.localhost`: names that mean this machine.
pub fn is_localhost_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn is_this_machine(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified()
}

/// The proxy for requests to `server`, read from `env` (a lookup of environment variables);
/// `None`: connect directly.
pub fn proxy_for(server: &Url, env: impl Fn(&str) -> Option<String>) -> Result<Option<Proxy>, BadProxy> {
    if is_loopback(server) {
        return Ok(None);
    }
    let first_set = |names: &[&'static str]| {
        names
            .iter()
            .find_map(|name| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(|v| (*name, v)))
    };
    let by_scheme: &[&'static str] =
        if server.scheme() == "https" { &["https_proxy", "HTTPS_PROXY"] } else { &["http_proxy", "HTTP_PROXY"] };
    let Some((variable, value)) = first_set(by_scheme).or_else(|| first_set(&["all_proxy", "ALL_PROXY"])) else {
        return Ok(None);
    };
    if let Some((_, exceptions)) = first_set(&["no_proxy", "NO_PROXY"])
        && bypasses(&exceptions, server)
    {
        return Ok(None);
    }
    // curl's reading: a proxy given without a scheme is an http:// one.
    let with_scheme = if value.contains("://") { value.clone() } else { format!("http://{value}") };
    let url = Url::parse(&with_scheme)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| BadProxy { variable, value: without_credentials(&value) })?;
    Ok(Some(Proxy { url, variable }))
}

/// Whether a `no_proxy` list names `server`'s host: `*` names every host; an entry names
/// a domain and its subdomains (`example.com`, `.example.com` and `*.example.com` alike), an
/// IP address, or a CIDR range; an entry's `:port`, if any, must be the server's port.
fn bypasses(list: &str, server: &Url) -> bool {
    let Some(host) = server.host() else { return false };
    let port = server.port_or_known_default();
    list.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = split_port(entry);
        if entry_port.is_some_and(|p| Some(p) != port) {
            return false;
        }
        match &host {
            Host::Domain(domain) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                let suffix = name.trim_start_matches('*').trim_start_matches('.').trim_end_matches('.');
                let suffix = suffix.to_ascii_lowercase();
                !suffix.is_empty() && (domain == suffix || domain.ends_with(&format!(".{suffix}")))
            }
            Host::Ipv4(ip) => in_network(IpAddr::V4(*ip), name),
            Host::Ipv6(ip) => in_network(IpAddr::V6(*ip), name),
        }
    })
}

/// `host:port` → (`host`, port); `[v6]:port` → (`v6`, port); anything else as it is.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        // One colon: a port. More: a bare IPv6 address or range.
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(ip: IpAddr, entry: &str) -> bool {
    if let Ok(net) = entry.parse::<ipnet::IpNet>() {
        return net.contains(&ip);
    }
    entry.parse::<IpAddr>().is_ok_and(|listed| listed.to_canonical() == ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    fn via(server: &str, pairs: &'static [(&'static str, &'static str)]) -> Option<(String, &'static str)> {
        proxy_for(&Url::parse(server).unwrap(), env(pairs)).unwrap().map(|p| (p.shown(), p.variable))
    }

    const ALL: &[(&str, &str)] = &[
        ("HTTP_PROXY", "http://127.0.0.1:3128"),
        ("http_proxy", "http://127.0.0.1:3128"),
        ("HTTPS_PROXY", "http://127.0.0.1:3128"),
        ("https_proxy", "http://127.0.0.1:3128"),
        ("ALL_PROXY", "http://127.0.0.1:3128"),
        ("all_proxy", "http://127.0.0.1:3128"),
    ];

    #[test]
    fn this_machine_is_always_reached_directly() {
        for server in [
            "http://127.0.0.1:8000",
            "http://127.9.9.9",
            "http://2130706433:8000",
            "http://0x7f.1:8000",
            "http://localhost:8000",
            "http://LOCALHOST.:8000",
            "http://api.localhost",
            "https://localhost",
            "http://[::1]:8000",
            "http://[::ffff:127.0.0.1]:8000",
            "http://0.0.0.0:8000",
            "http://[::]:8000",
        ] {
            assert_eq!(via(server, ALL), None, "{server}");
            assert!(is_loopback(&Url::parse(server).unwrap()), "{server}");
        }
        for elsewhere in
            ["http://10.0.0.1", "http://localhost.example.com", "http://mylocalhost", "http://[2001:db8::1]"]
        {
            assert!(!is_loopback(&Url::parse(elsewhere).unwrap()), "{elsewhere}");
        }
    }

    #[test]
    fn other_servers_use_the_proxy_of_their_scheme_lower_case_first() {
        const SET: &[(&str, &str)] = &[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:2"),
            ("HTTP_PROXY", "plain:3"),
            ("ALL_PROXY", "http://all:4"),
        ];
        assert_eq!(via("https://auth.example.com", SET), Some(("http://lower:2".into(), "https_proxy")));
        assert_eq!(via("http://auth.example.com", SET), Some(("http://plain:3".into(), "HTTP_PROXY")));
        const ONLY_ALL: &[(&str, &str)] = &[("all_proxy", "http://all:4"), ("https_proxy", " ")];
        assert_eq!(via("https://auth.example.com", ONLY_ALL), Some(("http://all:4".into(), "all_proxy")));
        assert_eq!(via("https://auth.example.com", &[]), None);
        const CREDENTIALS: &[(&str, &str)] = &[("https_proxy", "http://user:secret@proxy:8080")];
        assert_eq!(via("https://auth.example.com", CREDENTIALS), Some(("http://proxy:8080".into(), "https_proxy")));
    }

    #[test]
    fn no_proxy_names_domains_addresses_ranges_and_ports() {
        const SET: &[(&str, &str)] = &[
            ("https_proxy", "http://proxy:3128"),
            ("http_proxy", "http://proxy:3128"),
            (
                "no_proxy",
                "internal.example, .corp.example,*.lab.example, 10.0.0.0/8, 192.0.2.7, [2001:db8::1], auth.example.com:8443",
            ),
        ];
        for direct in [
            "https://internal.example",
            "https://a.internal.example",
            "https://corp.example",
            "https://x.y.corp.example",
            "https://box.lab.example",
            "http://10.1.2.3",
            "http://192.0.2.7:9000",
            "http://[2001:db8::1]",
            "https://auth.example.com:8443",
        ] {
            assert_eq!(via(direct, SET), None, "{direct}");
        }
        for proxied in ["https://notinternal.example", "http://11.0.0.1", "https://auth.example.com"] {
            assert!(via(proxied, SET).is_some(), "{proxied}");
        }
        const STAR: &[(&str, &str)] = &[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "*")];
        assert_eq!(via("https://auth.example.com", STAR), None);
    }

    #[test]
    fn a_proxy_that_is_not_a_url_is_named_without_its_password() {
        const BAD: &[(&str, &str)] = &[("https_proxy", "ftp://proxy:21")];
        let error = proxy_for(&Url::parse("https://auth.example.com").unwrap(), env(BAD)).unwrap_err();
        assert!(error.to_string().starts_with("https_proxy is set to \"ftp://proxy:21\""), "{error}");
        for secret in ["socks5://user:s3cretpw@127.0.0.1:1", "http://user:s3cretpw@[bad:1", "user:s3cretpw@host:99999"]
        {
            const NAMES: [&str; 1] = ["https_proxy"];
            let value = secret.to_owned();
            let error = proxy_for(&Url::parse("https://auth.example.com").unwrap(), move |name| {
                NAMES.contains(&name).then(|| value.clone())
            })
            .unwrap_err();
            assert!(!error.to_string().contains("s3cretpw"), "{error}");
        }
    }
}
