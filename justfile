# Loom Auth tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where cargo builds (honours CARGO_TARGET_DIR).
target_dir := env("CARGO_TARGET_DIR", justfile_directory() / "target")
wasm_out := target_dir / "wasm32-wasip2/release"
components := target_dir / "components"
# Guest builds: a 256 KiB shadow stack instead of 1 MiB, so a fresh instance touches (and
# the host resets) fewer pages per call (it halves the cost of a token check); SIMD, which
# speeds argon2 up by a fifth; and wide arithmetic (64x64->128-bit multiplies, which the host
# enables) with curve25519's 64-bit backend, which makes EdDSA a third faster (`just bench`).
guest_rustflags := '-C link-arg=-zstack-size=262144 -C target-feature=+simd128,+wide-arithmetic --cfg curve25519_dalek_bits="64"'
# The build before those two levers, which `just bench` compares with.
plain_guest_rustflags := "-C link-arg=-zstack-size=262144"
# The component the host serves and watches (override with LOOM_AUTH_COMPONENT).
component := env("LOOM_AUTH_COMPONENT", components / "auth-guest.wasm")
# The development signing key `just build-guest` makes once and signs with, and the
# public half `just serve` trusts (override with LOOM_AUTH_TRUSTED_SIGNERS).
dev_key := target_dir / "signing/dev.key"
trusted_signers := env("LOOM_AUTH_TRUSTED_SIGNERS", target_dir / "signing/dev.pub")

# List the recipes.
default:
    @just --list

# Add the wasm32-wasip2 Rust target when it is missing.
setup:
    @rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# The policies written in Rust (sources under policies/), built by `just build-guest`.
rust_policies := "email-domains invite-only org-claims"

# Build the auth component and its hardened variant into target/components/, and the Rust policies
# into target/components/policies/, signed with the development key.
build-guest: setup dev-key
    mkdir -p {{components}}/policies
    RUSTFLAGS='{{guest_rustflags}}' cargo build --release -p auth-guest --target wasm32-wasip2 --features hardened
    just _install {{wasm_out}}/auth_guest.wasm {{components}}/auth-guest-hardened.wasm
    RUSTFLAGS='{{guest_rustflags}}' cargo build --release -p auth-guest --target wasm32-wasip2
    just _install {{wasm_out}}/auth_guest.wasm {{components}}/auth-guest.wasm
    RUSTFLAGS='{{guest_rustflags}}' cargo build --release --target wasm32-wasip2 {{prepend("-p ", rust_policies)}}
    for name in {{rust_policies}}; do just _install {{wasm_out}}/${name//-/_}.wasm {{components}}/policies/$name.wasm; done
    just _sign-dev {{components}}/auth-guest-hardened.wasm {{components}}/auth-guest.wasm \
        {{prepend(components / "policies/", append(".wasm", rust_policies))}}
    @ls -l {{components}}/*.wasm {{components}}/policies/*.wasm

# Build the Python policy (policies/plans, with componentize-py from `just py-tools`) into
# target/components/policies/plans.wasm, signed with the development key.
build-python-policy: py-tools dev-key
    #!/usr/bin/env bash
    set -euo pipefail
    tool={{target_dir}}/py/bin/componentize-py
    if [ ! -x "$tool" ]; then
        # py-tools said why (no python3 venv); the test that serves it says it did not run.
        echo "warning: no componentize-py: the Python policy is not built" >&2
        exit 0
    fi
    mkdir -p {{components}}/policies
    out={{components}}/policies/plans.wasm
    (cd policies/plans && "$tool" -d ../../wit/policy -w policy componentize app -o "$out.building")
    mv -f "$out.building" "$out"
    just _sign-dev "$out"

# Make the development signing key pair (target/signing/dev.key, mode 0600, and dev.pub) unless it exists.
dev-key:
    cargo build --release --quiet -p loom-sign
    {{target_dir}}/release/loom-sign keygen --if-missing --secret-key {{dev_key}} --public-key {{target_dir}}/signing/dev.pub

# Sign the component at PATH (writes PATH.minisig) with the secret key KEY (default: the development key).
# Make your own with `target/release/loom-sign keygen --secret-key K --public-key K.pub` and trust K.pub.
sign PATH KEY=dev_key:
    @cargo build --release --quiet -p loom-sign
    {{target_dir}}/release/loom-sign sign --secret-key "{{KEY}}" "{{PATH}}"

# Sign FILES with the development key.
_sign-dev +FILES:
    @cargo build --release --quiet -p loom-sign
    {{target_dir}}/release/loom-sign sign --secret-key {{dev_key}} {{FILES}}

# Build the misbehaving test components into target/components/fixtures/, signed with the development key.
build-fixtures: setup dev-key
    mkdir -p {{components}}/fixtures
    for variant in evil:'' loop:loop-always trap:trap-always alloc:alloc-always wrong:wrong-answers issue-fails:issue-fails wit-next:wit-next previous:wit-previous lax:lax-tokens forged:forged-tokens forgets-tokens:forgets-tokens forgets-hashes:forgets-hashes; do \
        name=${variant%%:*}; features=${variant#*:}; \
        RUSTFLAGS='{{guest_rustflags}}' cargo build --release -p fixture-guest --target wasm32-wasip2 --features "$features" --quiet; \
        just _install {{wasm_out}}/fixture_guest.wasm {{components}}/fixtures/$name.wasm; \
    done
    RUSTFLAGS='{{guest_rustflags}}' cargo build --release -p fixture-policy --target wasm32-wasip2 --quiet
    just _install {{wasm_out}}/fixture_policy.wasm {{components}}/fixtures/policy.wasm
    printf 'this is not a WebAssembly component\n' > {{components}}/fixtures/not-a-component.wasm
    just _sign-dev {{components}}/fixtures/*.wasm

# Build the component and the host in release, then serve on the defaults (extra ARGS go to host-server).
serve *ARGS: build-guest
    # The whole workspace's features, as `just test` builds them: one build of wasmtime serves both.
    cargo build --release --workspace --bin host-server
    {{target_dir}}/release/host-server --component {{component}} --trusted-signers {{trusted_signers}} {{ARGS}}

# Swap the served component for PATH (e.g. target/components/auth-guest-hardened.wasm) on the running host;
# its signature (PATH.minisig) goes first.
swap PATH:
    @if [ -f "{{PATH}}.minisig" ]; then just _install "{{PATH}}.minisig" {{component}}.minisig; fi
    @just _install "{{PATH}}" {{component}}
    @echo "Installed {{PATH}} as {{component}}; the host checks it and swaps it in (see its log or /healthz)."

# The Python tools the tests drive (schemathesis, selenium for Chromium, openapi-spec-validator), in a
# virtualenv under target/py, reinstalled only when tests/python/requirements.txt changes.
py-tools:
    #!/usr/bin/env bash
    set -euo pipefail
    venv={{target_dir}}/py
    wanted=$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)
    if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$wanted" ]; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            # Outside CI the tests that need these tools say loudly that they did not run.
            if [ "${CI:-}" = "true" ]; then echo "python3 with venv is required" >&2; exit 1; fi
            echo "warning: no python3 with venv: the schemathesis and browser tests will not run" >&2
            exit 0
        fi
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
        echo "$wanted" > "$venv/.installed"
    fi

# Build everything and run every test of the workspace (release: wasmtime's compiler is slow unoptimised),
# then the API, abuse and admin suites again on PostgreSQL: on LOOM_TEST_POSTGRES_URL if set, else on a throwaway server.
test: build-guest build-fixtures py-tools build-python-policy
    cargo build --release --workspace --bins
    {{target_dir}}/release/with-postgres just _test-suites

# The suites on SQLite, then the database-facing ones again on PostgreSQL when `with-postgres` found a server.
_test-suites:
    cargo test --release --workspace
    if [ -n "${LOOM_TEST_POSTGRES_URL:-}" ]; then \
        LOOM_TEST_BACKEND=postgres cargo test --release --workspace --test api --test abuse --test admin --test import --test keys; \
    else \
        echo "the PostgreSQL pass of api, abuse, admin, import and keys: PostgreSQL is not installed" \
            >> {{target_dir}}/release/tests-that-did-not-run.txt; \
    fi

# Measure the boundary's cost, HTTP load, start and swap times and memory; prints a table, writes bench/RESULTS.md.
bench: build-guest
    RUSTFLAGS="{{plain_guest_rustflags}}" CARGO_TARGET_DIR={{target_dir}}/plain-guest cargo build --release -p auth-guest --target wasm32-wasip2
    @just _install {{target_dir}}/plain-guest/wasm32-wasip2/release/auth_guest.wasm {{components}}/auth-guest-plain.wasm
    cargo build --release --workspace --bin host-server --bin loom-bench
    cargo bench -p loom-bench --bench boundary
    {{target_dir}}/release/loom-bench

# Only GET /users/me/ against the bare axum ceiling, with context switches per request (for profiling).
bench-hot-path: build-guest
    cargo build --release --workspace --bin host-server --bin loom-bench
    {{target_dir}}/release/loom-bench --hot-path

# Mutation testing (not in CI): lists the mutants no test catches, in target/mutants/.
mutants *ARGS:
    #!/usr/bin/env bash
    # Breaks the code whose tests are fast natively, one mutant at a time (cargo-mutants).
    set -uo pipefail
    command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
    export CARGO_TARGET_DIR={{target_dir}}/mutants-build
    mkdir -p {{target_dir}}/mutants
    status=0
    scope() {
        local name=$1; shift
        cargo mutants --no-shuffle -o {{target_dir}}/mutants/$name "$@" 2>&1 | tee {{target_dir}}/mutants/$name.log
        [ "${PIPESTATUS[0]}" = 0 ] || status=1
    }
    # The guest's logic (its WIT glue, component.rs, runs only inside wasmtime: the e2e suites test it).
    scope auth-guest -p auth-guest -e auth-guest/src/component.rs {{ARGS}}
    # loom's settings file: parsing, locking, writing without loss.
    scope loom-cli -p loom-cli -f loom-cli/src/settings.rs {{ARGS}}
    # The host's pure modules, with its unit tests only (the e2e suites need a build of everything per mutant).
    scope host-server -p host-server -f host-server/src/accounts/email.rs -f host-server/src/accounts/throttle.rs \
        -f host-server/src/durable.rs -f host-server/src/tokens.rs {{ARGS}} -- --lib
    for name in auth-guest loom-cli host-server; do
        echo "$name: $(grep -h 'mutants tested' {{target_dir}}/mutants/$name.log)"
    done
    exit $status

# Formatting and lints.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Copy SRC beside DST, then rename it over DST: a watcher never sees half a file.
_install SRC DST:
    @test -f "{{SRC}}" || { echo "error: {{SRC}} does not exist" >&2; exit 1; }
    @cp "{{SRC}}" "{{DST}}.installing.$$" && mv -f "{{DST}}.installing.$$" "{{DST}}"
