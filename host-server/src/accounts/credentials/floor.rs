//! The floor a failed check is padded to, and what raises it.
//!
//! The serving component's own cost, measured on a decoy hash it made, times a margin for
//! noise. Stored hashes can be dearer: argon2 ones made before a swap back to a cheaper
//! component, and hashes of another algorithm (imported bcrypt or PBKDF2). Within an algorithm
//! family a hash's rank orders its cost ([`HashFormat::rank`]), so the floor needs only the
//! dearest stored hash of each family, timed (an argon2 one, until it is measured, in
//! proportion to its parameters: memory times passes against the decoy's, which
//! underestimates a hash that needs more memory than the caches hold, hence the measurement):
//! however many costs an import brings (passlib's `vary_rounds`), each family is one number.
//! A hash the component cannot check here (past its deadline or memory) marks its family
//! unusable from its rank up: such accounts are checked as the decoy, padded alike. Both are
//! surveyed at start, within [`IMPORTS_POLL`] of an import made while hosts serve, and every
//! [`SURVEY_EVERY`], and noted at every check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::accounts::password::HashFormat;
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
/// The dearest ranks of a family a survey keeps, to time from the top down until one can be
/// checked (those above it are unusable here).
const SURVEY_RANKS: usize = 8;

/// A hash's rank within its family ([`HashFormat::rank`]).
type Rank = (u64, u64);

/// The decoy hash and the cost floor, for the component that made them.
pub(super) struct Reference {
    made_by: String,
    pub(super) decoy: String,
    /// The floor for one check of a hash as dear as the decoy.
    floor: Duration,
    /// The decoy's argon2 cost ([`argon2_cost`]).
    decoy_cost: u64,
    /// The decoy's format: stored hashes of its family and no higher rank cost no more.
    decoy_format: Option<HashFormat>,
}

impl Reference {
    /// Whether a check of `format` may cost more than the decoy's, and so is timed.
    pub(super) fn dearer_than_decoy(&self, format: &HashFormat) -> bool {
        match &self.decoy_format {
            Some(decoy) if decoy.family() == format.family() => format.rank() > decoy.rank(),
            _ => true,
        }
    }
}

/// What is known of one family's stored hashes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct FamilyCost {
    /// The dearest rank timed, and its fastest check.
    timed: Option<Timed>,
    /// Hashes of this rank and above cannot be checked here.
    unusable_from: Option<Rank>,
}

/// A rank's fastest check, with the format and cost it stands for (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Timed {
    rank: Rank,
    fastest: Duration,
    class: String,
}

/// The floor's parts, one set per host.
#[derive(Default)]
pub(super) struct Floor {
    reference: Mutex<Option<Arc<Reference>>>,
    /// The dearest argon2 cost of a stored hash seen so far ([`argon2_cost`]).
    dearest: AtomicU64,
    /// Each family's dearest timed rank and its cost, and where it becomes unusable.
    families: std::sync::Mutex<BTreeMap<&'static str, FamilyCost>>,
}

/// What checking `phc` costs in argon2 units (memory KiB times passes); `None` for another
/// format.
fn argon2_cost(phc: &str) -> Option<u64> {
    HashFormat::of(phc).ok()?.argon2_cost()
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
        let timed = self.lock_families().values().filter_map(|family| family.timed.as_ref().map(|t| t.fastest)).max();
        argon2.max(timed.map_or(Duration::ZERO, |fastest| fastest.mul_f64(MARGIN)))
    }

    fn lock_families(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, FamilyCost>> {
        // The map holds numbers only: one a panicking holder left is still good.
        self.families.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn family(&self, format: &HashFormat) -> FamilyCost {
        self.lock_families().get(format.family()).cloned().unwrap_or_default()
    }

    /// Notes a stored argon2 hash's cost, so the floor covers it.
    pub(super) fn note(&self, phc: &str) {
        if let Some(cost) = argon2_cost(phc) {
            self.dearest.fetch_max(cost, Ordering::Relaxed);
        }
    }

    /// Notes how long a check of a stored hash of `format` took: the family's dearest rank
    /// timed counts (its fastest check); a cheaper rank is covered by it.
    pub(super) fn note_time(&self, format: &HashFormat, took: Duration) {
        let rank = format.rank();
        let mut families = self.lock_families();
        let family = families.entry(format.family()).or_default();
        match &mut family.timed {
            Some(timed) if timed.rank == rank => timed.fastest = timed.fastest.min(took),
            Some(timed) if timed.rank > rank => {}
            _ => family.timed = Some(Timed { rank, fastest: took, class: format.describe() }),
        }
    }

    /// Whether a hash of `format` can be checked here (none of its family from its rank down
    /// was found too dear).
    pub(super) fn usable(&self, format: &HashFormat) -> bool {
        self.family(format).unusable_from.is_none_or(|from| format.rank() < from)
    }

    /// Notes that a hash of `format` cannot be checked here: its rank and above are unusable.
    pub(super) fn note_unusable(&self, format: &HashFormat) {
        let rank = format.rank();
        let mut families = self.lock_families();
        let family = families.entry(format.family()).or_default();
        family.unusable_from = Some(family.unusable_from.map_or(rank, |from| from.min(rank)));
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
        let decoy_format = HashFormat::of(&decoy).ok();
        let made = Arc::new(Reference { made_by: serving, decoy, floor, decoy_cost, decoy_format });
        *reference = Some(Arc::clone(&made));
        Ok(made)
    }

    /// Surveys the stored hashes whose parameters differ from the serving component's: notes
    /// the argon2 ones' costs, and times each family's dearest rank, from the top down until
    /// one can be checked here (those above it are marked unusable), unless a check of that
    /// rank or a dearer one was timed already.
    pub(super) async fn survey(
        &self,
        runtime: &Arc<Runtime>,
        store: &crate::store::UserStore,
    ) -> Result<(), super::SurveyError> {
        let reference = self.reference(runtime).await?;
        let prefix = parameters_prefix(&reference.decoy).unwrap_or_default();
        let mut noted = 0u64;
        // Per family, its dearest ranks (at most SURVEY_RANKS), each with one stored hash.
        let mut dearest: BTreeMap<&'static str, BTreeMap<Rank, (HashFormat, String)>> = BTreeMap::new();
        store
            .hashes_not_starting_with(prefix, |phc| {
                self.note(phc);
                noted += 1;
                let Some(format) = HashFormat::of(phc).ok().filter(|f| reference.dearer_than_decoy(f)) else {
                    return;
                };
                let ranks = dearest.entry(format.family()).or_default();
                ranks.entry(format.rank()).or_insert_with(|| (format, phc.to_owned()));
                if ranks.len() > SURVEY_RANKS {
                    ranks.pop_first();
                }
            })
            .await?;
        for (family, ranks) in dearest {
            // Tried from the dearest down: this survey's view of where the family is unusable.
            let mut failed_from = None;
            for (rank, (format, sample)) in ranks.into_iter().rev() {
                let known = self.family(&format);
                let timed = known.timed.is_some_and(|timed| timed.rank >= rank);
                if timed && known.unusable_from.is_none_or(|from| rank < from) {
                    break;
                }
                match fastest_check(runtime, &sample).await {
                    Ok(fastest) => {
                        self.note_time(&format, fastest);
                        break;
                    }
                    // Its accounts cannot log in here (each check fails alike); the others still count.
                    Err(error) => {
                        tracing::warn!(
                            format = format.describe(),
                            error = error.to_string().lines().next().unwrap_or_default(),
                            "the component cannot check the stored hashes of this format here (see \
                             --guest-memory-mib and --hash-deadline-ms)"
                        );
                        failed_from = Some(rank);
                    }
                }
            }
            // What failed at a check or a survey before (a busy moment) and checks now is usable again.
            self.lock_families().entry(family).or_default().unusable_from = failed_from;
        }
        let families = self.lock_families();
        // Each family's dearest timed hash, by its format and cost: `{"bcrypt $2b$ cost 12": 250ms}`.
        let timed: BTreeMap<&str, Duration> =
            families.values().filter_map(|f| f.timed.as_ref()).map(|t| (t.class.as_str(), t.fastest)).collect();
        let unusable: BTreeMap<&str, Rank> =
            families.iter().filter_map(|(name, f)| Some((*name, f.unusable_from?))).collect();
        tracing::debug!(
            noted,
            dearest = self.dearest.load(Ordering::Relaxed),
            timed = ?timed,
            unusable_from = ?unusable,
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

    fn format(phc: &str) -> HashFormat {
        HashFormat::of(phc).unwrap()
    }

    fn bcrypt(cost: u32) -> HashFormat {
        format(&format!("$2b${cost:02}$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"))
    }

    fn pbkdf2(rounds: u64) -> HashFormat {
        format(&format!("$pbkdf2-sha256${rounds}$c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
    }

    fn reference() -> Reference {
        Reference {
            made_by: String::new(),
            decoy: String::new(),
            floor: ms(40),
            decoy_cost: 38_912,
            decoy_format: None,
        }
    }

    #[test]
    fn a_hash_is_compared_by_its_parameters() {
        let hardened = "$argon2id$v=19$m=32768,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        assert_eq!(argon2_cost(hardened), Some(98_304));
        assert_eq!(parameters_prefix(hardened), Some("$argon2id$v=19$m=32768,t=3,p=1$"));
        assert_eq!(format(hardened).rank(), (98_304, 32_768));
        assert_eq!(argon2_cost("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"), None);
        let decoy = Reference {
            decoy_format: Some(format("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")),
            ..reference()
        };
        assert!(decoy.dearer_than_decoy(&format(hardened)));
        assert!(!decoy.dearer_than_decoy(&format("$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")));
        assert!(decoy.dearer_than_decoy(&bcrypt(4)), "another family is always timed");
    }

    #[test]
    fn each_family_counts_by_its_dearest_rank_timed() {
        let floor = Floor::default();
        assert_eq!(floor.of(&reference()), ms(40));
        floor.note_time(&bcrypt(12), ms(300));
        floor.note_time(&bcrypt(12), ms(200));
        floor.note_time(&bcrypt(12), ms(250));
        floor.note_time(&bcrypt(10), ms(60));
        assert_eq!(floor.of(&reference()), ms(300), "1.5 times bcrypt 12's fastest");
        floor.note_time(&bcrypt(13), ms(150));
        assert_eq!(floor.of(&reference()), ms(225), "the dearer rank replaces the cheaper's time");
        floor.note("$argon2id$v=19$m=194560,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA");
        assert_eq!(floor.of(&reference()), ms(400), "ten times the decoy's cost");
        // Measured, a hash that needs more memory than the caches hold costs more than that.
        floor.note_time(&format("$argon2id$v=19$m=194560,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"), ms(500));
        assert_eq!(floor.of(&reference()), ms(750), "1.5 times its fastest check");
    }

    #[test]
    fn however_many_ranks_a_family_has_it_is_one_entry() {
        let floor = Floor::default();
        for rounds in (1_000..=200_000).step_by(1_000) {
            floor.note_time(&pbkdf2(rounds), ms(rounds / 1_000));
        }
        assert_eq!(floor.lock_families().len(), 1);
        assert_eq!(floor.of(&reference()), ms(300), "the dearest of 200 ranks, whatever the order");
    }

    #[test]
    fn a_family_is_unusable_from_the_rank_that_failed() {
        let floor = Floor::default();
        assert!(floor.usable(&bcrypt(16)));
        floor.note_unusable(&bcrypt(15));
        assert!(!floor.usable(&bcrypt(16)) && !floor.usable(&bcrypt(15)));
        assert!(floor.usable(&bcrypt(14)) && floor.usable(&pbkdf2(1_000)));
        floor.note_unusable(&bcrypt(16));
        assert!(!floor.usable(&bcrypt(15)), "the lowest failure counts");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
