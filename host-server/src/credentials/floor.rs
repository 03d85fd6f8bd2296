//! The floor a failed check is padded to, and what raises it.
//!
//! The serving component's own cost, measured on a decoy hash it made, times a margin for
//! noise. Stored hashes can be dearer: argon2 ones made before a swap back to a cheaper
//! component, and hashes of another algorithm (imported bcrypt or PBKDF2). Each format and
//! cost other than the decoy's raises it by its measured time, the fastest check seen (an
//! argon2 one, until it is measured, in proportion to its parameters: memory times passes
//! against the decoy's, which underestimates a hash that needs more memory than the caches
//! hold, hence the measurement). Both are surveyed at start, within
//! [`IMPORTS_POLL`] of an import made while hosts serve, and every [`SURVEY_EVERY`], and noted
//! at every check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::password::HashFormat;
use crate::runtime::{Runtime, RuntimeError};

/// How many checks measure a cost (the fastest counts: noise only ever adds time).
const MEASUREMENTS: usize = 3;
/// The floor is the measured cost times this, so that a check slowed by noise (a busy
/// machine) still ends before the floor, and only the floor shows.
const MARGIN: f64 = 1.5;
/// How often a host surveys the stored hashes again.
pub const SURVEY_EVERY: Duration = Duration::from_secs(600);
/// How often a host looks for a new import (one cheap read), to survey it at once.
pub const IMPORTS_POLL: Duration = Duration::from_secs(5);
/// At most this many formats of another algorithm are timed (an import's bounds keep the real
/// number far below: bcrypt has 13 costs).
const MAX_FOREIGN_CLASSES: usize = 64;

/// The decoy hash and the cost floor, for the component that made them.
pub(super) struct Reference {
    made_by: String,
    pub(super) decoy: String,
    /// The floor for one check of a hash as dear as the decoy.
    floor: Duration,
    /// The decoy's argon2 cost ([`argon2_cost`]).
    decoy_cost: u64,
    /// The decoy's format and cost ([`timed_class`]): stored hashes of it are not timed.
    decoy_class: Option<String>,
}

impl Reference {
    /// The class to time a check of `phc` under: its own, unless it is the decoy's.
    pub(super) fn timed_class_of(&self, phc: &str) -> Option<String> {
        timed_class(phc).filter(|class| self.decoy_class.as_ref() != Some(class))
    }
}

/// The floor's parts, one set per host.
#[derive(Default)]
pub(super) struct Floor {
    reference: Mutex<Option<Arc<Reference>>>,
    /// The dearest argon2 cost of a stored hash seen so far ([`argon2_cost`]).
    dearest: AtomicU64,
    /// The fastest check seen of each stored format and cost ([`timed_class`]).
    foreign: std::sync::Mutex<BTreeMap<String, Duration>>,
}

/// What checking `phc` costs in argon2 units (memory KiB times passes); `None` for another
/// format.
fn argon2_cost(phc: &str) -> Option<u64> {
    HashFormat::of(phc).ok()?.argon2_cost()
}

/// The format and cost of a stored hash (`bcrypt $2b$ cost 12`, `argon2id m=32768,t=3,p=1`),
/// whose time is measured; `None` for what is not a hash.
pub(super) fn timed_class(phc: &str) -> Option<String> {
    Some(HashFormat::of(phc).ok()?.describe())
}

/// The part of a PHC string before its salt: `$argon2id$v=19$m=19456,t=2,p=1$`.
fn parameters_prefix(phc: &str) -> Option<&str> {
    let end = phc.match_indices('$').nth(3)?.0;
    Some(&phc[..=end])
}

/// A random password nobody knows: 128 bits, in hex.
pub(super) fn random_password() -> Result<SecretString, RuntimeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| RuntimeError::Trap(format!("no randomness: {e}")))?;
    Ok(SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

impl Floor {
    /// The floor for one check now.
    pub(super) fn of(&self, reference: &Reference) -> Duration {
        let dearest = self.dearest.load(Ordering::Relaxed);
        let argon2 = if dearest <= reference.decoy_cost || reference.decoy_cost == 0 {
            reference.floor
        } else {
            reference.floor.mul_f64(dearest as f64 / reference.decoy_cost as f64)
        };
        let foreign = self.lock_foreign().values().max().map_or(Duration::ZERO, |fastest| fastest.mul_f64(MARGIN));
        argon2.max(foreign)
    }

    fn lock_foreign(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Duration>> {
        // The map holds durations only: one a panicking holder left is still good.
        self.foreign.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a stored argon2 hash's cost, so the floor covers it.
    pub(super) fn note(&self, phc: &str) {
        if let Some(cost) = argon2_cost(phc) {
            self.dearest.fetch_max(cost, Ordering::Relaxed);
        }
    }

    /// Notes how long a check of a stored hash of `class` took (its fastest counts).
    pub(super) fn note_time(&self, class: String, took: Duration) {
        let mut foreign = self.lock_foreign();
        if foreign.len() >= MAX_FOREIGN_CLASSES && !foreign.contains_key(&class) {
            return;
        }
        let fastest = foreign.entry(class).or_insert(took);
        *fastest = (*fastest).min(took);
    }

    /// The decoy and base floor for the serving component, made and measured on first use
    /// after a swap.
    pub(super) async fn reference(&self, runtime: &Arc<Runtime>) -> Result<Arc<Reference>, RuntimeError> {
        let serving = runtime.info().sha256;
        let mut reference = self.reference.lock().await;
        if let Some(made) = reference.as_ref()
            && made.made_by == serving
        {
            return Ok(Arc::clone(made));
        }
        let decoy = runtime.hash_password(random_password()?).await?;
        let fastest = fastest_check(runtime, &decoy).await?;
        let floor = fastest.mul_f64(MARGIN);
        tracing::debug!(floor_ms = floor.as_millis() as u64, "measured the cost of a password check");
        let decoy_cost = argon2_cost(&decoy).unwrap_or(0);
        let decoy_class = timed_class(&decoy);
        let made = Arc::new(Reference { made_by: serving, decoy, floor, decoy_cost, decoy_class });
        *reference = Some(Arc::clone(&made));
        Ok(made)
    }

    /// Surveys the stored hashes whose parameters differ from the serving component's: notes
    /// the argon2 ones' costs, and times one hash of each format and cost not timed yet.
    pub(super) async fn survey(
        &self,
        runtime: &Arc<Runtime>,
        store: &crate::store::UserStore,
    ) -> Result<(), super::SurveyError> {
        let reference = self.reference(runtime).await?;
        let prefix = parameters_prefix(&reference.decoy).unwrap_or_default();
        let known: Vec<String> = self.lock_foreign().keys().cloned().collect();
        let (mut noted, mut samples) = (0u64, BTreeMap::new());
        store
            .hashes_not_starting_with(prefix, |phc| {
                self.note(phc);
                noted += 1;
                if let Some(class) = timed_class(phc)
                    && !known.contains(&class)
                    && samples.len() < MAX_FOREIGN_CLASSES
                {
                    samples.entry(class).or_insert_with(|| phc.to_owned());
                }
            })
            .await?;
        for (class, sample) in samples {
            match fastest_check(runtime, &sample).await {
                Ok(fastest) => self.note_time(class, fastest),
                // Its accounts cannot log in here (each check fails alike); the others still count.
                Err(error) => tracing::warn!(
                    format = class,
                    error = error.to_string().lines().next().unwrap_or_default(),
                    "the component cannot check the stored hashes of this format here (see --guest-memory-mib \
                     and --hash-deadline-ms)"
                ),
            }
        }
        tracing::debug!(
            noted,
            dearest = self.dearest.load(Ordering::Relaxed),
            foreign = ?*self.lock_foreign(),
            "surveyed the stored password hashes"
        );
        Ok(())
    }
}

/// The fastest of [`MEASUREMENTS`] checks of a random password against `phc`.
async fn fastest_check(runtime: &Arc<Runtime>, phc: &str) -> Result<Duration, RuntimeError> {
    let mut fastest = Duration::MAX;
    for _ in 0..MEASUREMENTS {
        let started = Instant::now();
        runtime.verify_password(random_password()?, phc.to_owned()).await?;
        fastest = fastest.min(started.elapsed());
    }
    Ok(fastest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_compared_by_its_parameters() {
        let hardened = "$argon2id$v=19$m=32768,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        assert_eq!(argon2_cost(hardened), Some(98_304));
        assert_eq!(parameters_prefix(hardened), Some("$argon2id$v=19$m=32768,t=3,p=1$"));
        assert!(timed_class(hardened).is_some_and(|class| class.ends_with("m=32768,t=3,p=1")), "{hardened}");
        let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert_eq!(argon2_cost(bcrypt), None);
        assert_eq!(timed_class(bcrypt).as_deref(), Some("bcrypt $2b$ cost 12"));
        assert_eq!(timed_class("hunter2"), None);
    }

    #[test]
    fn a_format_of_another_algorithm_counts_by_its_fastest_check() {
        let floor = Floor::default();
        let reference = Reference {
            made_by: String::new(),
            decoy: String::new(),
            floor: ms(40),
            decoy_cost: 38_912,
            decoy_class: None,
        };
        assert_eq!(floor.of(&reference), ms(40));
        floor.note_time("bcrypt cost 12".into(), ms(300));
        floor.note_time("bcrypt cost 12".into(), ms(200));
        floor.note_time("bcrypt cost 12".into(), ms(250));
        floor.note_time("bcrypt cost 10".into(), ms(60));
        assert_eq!(floor.of(&reference), ms(300), "1.5 times bcrypt 12's fastest");
        floor.note("$argon2id$v=19$m=194560,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA");
        assert_eq!(floor.of(&reference), ms(400), "ten times the decoy's cost");
        // Measured, a hash that needs more memory than the caches hold costs more than that.
        floor.note_time("argon2id m=194560,t=2,p=1".into(), ms(500));
        assert_eq!(floor.of(&reference), ms(750), "1.5 times its fastest check");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
