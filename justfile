# Loom Auth tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where cargo builds (honours CARGO_TARGET_DIR).
target_dir := env("CARGO_TARGET_DIR", justfile_directory() / "target")
component := target_dir / "wasm32-wasip2/release/auth_guest.wasm"

# List the recipes.
default:
    @just --list

# Add the wasm32-wasip2 Rust target when it is missing.
setup:
    @rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Build the auth component (target/wasm32-wasip2/release/auth_guest.wasm).
build-guest: setup
    cargo build --release -p auth-guest --target wasm32-wasip2
    @ls -l {{component}}

# Build the component and the host in release, then serve on the defaults (extra ARGS go to host-server).
serve *ARGS: build-guest
    cargo build --release -p host-server
    {{target_dir}}/release/host-server --component {{component}} {{ARGS}}

# Build everything and run every test of the workspace (release: wasmtime's compiler is slow unoptimised).
test: build-guest
    cargo build --release --workspace --bins
    cargo test --release --workspace

# Formatting and lints, as CI's reviewers expect them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
