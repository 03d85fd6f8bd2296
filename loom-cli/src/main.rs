//! `loom`, the Loom developer-automation CLI: account commands (login, logout, whoami, register) come next.
fn main() {}
