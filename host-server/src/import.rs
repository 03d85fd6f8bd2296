//! Moving in from the FastAPI service: its users, with their ids and password hashes, checked
//! row by row against the rules registration applies, then written in one transaction.
//!
//! Nothing about a refused row's hash is ever said (only its old id and why); the hashes are
//! checked by their format and cost here, and against passwords only by the component, at
//! each imported account's first login, which then re-hashes it to argon2id.

use std::collections::{HashMap, HashSet};

use crate::accounts::password::HashFormat;
use crate::store::source::{LegacyUser, Raw};
use crate::store::{ImportedUser, email_key, username_key};

/// What a row comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Imported (or, in a dry run, would be).
    Import,
    /// The same account (same id and email) is here already: nothing to do.
    AlreadyHere,
    /// Refused, and why.
    Refused(String),
}

/// The plan for one row: how the report names it (its old id, or its position when it has
/// none), what comes of it, a warning (a username dropped, an unknown state), and the account
/// to create when it is imported.
#[derive(Debug, Clone)]
pub struct Planned {
    pub label: String,
    pub verdict: Verdict,
    pub warning: Option<String>,
    pub account: Option<ImportedUser>,
}

impl Planned {
    /// The format and cost of the hash it would import ([`HashFormat::describe`]).
    pub fn format(&self) -> Option<String> {
        HashFormat::of(&self.account.as_ref()?.hashed_password).ok().map(|format| format.describe())
    }

    /// Refuses the row: its hash's `format` cannot be checked here, for `why`.
    pub fn refuse_format(&mut self, format: &str, why: &str) {
        self.account = None;
        self.verdict = Verdict::Refused(format!("its password hash ({format}) {why}"));
    }
}

/// The largest id kept: JSON clients (JavaScript's numbers) hold integers exactly up to 2^53 - 1.
pub const MAX_ID: i64 = (1 << 53) - 1;
/// Longest value quoted in the report, in characters.
const QUOTED_CHARS: usize = 40;

/// A key (an email's or a username's) as the planner keeps it: 128 bits of its SHA-256, so
/// that what it holds per row is a few dozen bytes, whatever the row (a million rows: tens
/// of megabytes, not the rows themselves).
type Key = [u8; 16];

fn key(text: &str) -> Key {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    digest[..16].try_into().expect("a SHA-256 has 16 bytes and more")
}

/// Decides rows one at a time, in the source's order, against the accounts here and the rows
/// before, as registration would: an id of its own, a valid email (normalised the same way),
/// unique by its key among the rows and the accounts here; a username kept when it fits the
/// rules and is free, dropped with a warning otherwise; a well-formed hash of a format the
/// component checks, within its bounds. Holds only what uniqueness needs, never a row: the
/// same rows decided again by a fresh planner come to the same plans.
pub struct Planner {
    /// The accounts here: by id, and by email.
    by_id: HashMap<i64, Key>,
    emails: HashMap<Key, i64>,
    usernames: HashSet<Key>,
    seen: Seen,
    position: usize,
}

impl Planner {
    /// A planner against the accounts here (`existing`: id, email key, username key).
    pub fn new(existing: &[(i64, String, Option<String>)]) -> Self {
        Self {
            by_id: existing.iter().map(|(id, email, _)| (*id, key(email))).collect(),
            emails: existing.iter().map(|(id, email, _)| (key(email), *id)).collect(),
            usernames: existing.iter().filter_map(|(_, _, name)| name.as_deref().map(key)).collect(),
            seen: Seen::default(),
            position: 0,
        }
    }

    /// The plan for the next row.
    pub fn decide(&mut self, row: &LegacyUser) -> Planned {
        self.position += 1;
        let label = match text(&row.id) {
            Ok(Some(id)) if !id.trim().is_empty() => shorten(id.trim()),
            _ => format!("at position {}", self.position),
        };
        let refused = |label: String, why: String| Planned {
            label,
            verdict: Verdict::Refused(why),
            warning: None,
            account: None,
        };
        let (id, email, hashed_password) = match decide(row, &self.by_id, &self.emails, &mut self.seen) {
            Err(refusal) => return refused(label, refusal),
            Ok(None) => return Planned { label, verdict: Verdict::AlreadyHere, warning: None, account: None },
            Ok(Some(account)) => account,
        };
        let mut warnings = Vec::new();
        let username = match text(&row.username) {
            Ok(name) => name.map(str::trim).filter(|name| !name.is_empty()),
            Err(()) => {
                warnings.push("its username is not text: dropped".to_owned());
                None
            }
        };
        let username = match username {
            None => None,
            Some(name) if crate::accounts::username::check(name).is_err() => {
                warnings.push(format!("its username {} does not fit the username rules: dropped", quote(name)));
                None
            }
            Some(name) if self.usernames.contains(&key(&username_key(name))) => {
                warnings.push(format!("its username {} is taken: dropped", quote(name)));
                None
            }
            Some(name) => Some(name.to_owned()),
        };
        let is_active = match active(&row.is_active) {
            Ok(Some(active)) => active,
            Ok(None) => {
                warnings.push(
                    "its is_active is NULL: imported deactivated (`host-server users activate EMAIL` lets it in)"
                        .to_owned(),
                );
                false
            }
            Err(given) => return refused(label, format!("its is_active {given} is neither true nor false")),
        };
        // Its email is in `seen` already: a later row of it is refused as this row's twin.
        if let Some(name) = &username {
            self.usernames.insert(key(&username_key(name)));
        }
        let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        let account = ImportedUser { id, email, username, hashed_password, is_active };
        Planned { label, verdict: Verdict::Import, warning, account: Some(account) }
    }
}

/// The ids and email keys of the rows decided so far, with the id of each email's row.
#[derive(Default)]
struct Seen {
    ids: HashSet<i64>,
    emails: HashMap<Key, i64>,
}

/// A value as text: `Ok(None)` for NULL, `Err` when its bytes are not UTF-8.
fn text(raw: &Raw) -> Result<Option<&str>, ()> {
    raw.as_deref().map(std::str::from_utf8).transpose().map_err(drop)
}

/// A value for the report: at most [`QUOTED_CHARS`] characters, control characters escaped.
fn shorten(value: &str) -> String {
    let mut shown: String = value.chars().take(QUOTED_CHARS).flat_map(char::escape_debug).collect();
    if value.chars().count() > QUOTED_CHARS {
        shown.push('…');
    }
    shown
}

/// A value for the report, shortened and in quotes.
fn quote(value: &str) -> String {
    format!("\"{}\"", shorten(value))
}

/// `is_active` as SQLAlchemy, SQLite and PostgreSQL write it; `Ok(None)` for NULL, `Err` (the
/// value, quoted) for anything else.
fn active(raw: &Raw) -> Result<Option<bool>, String> {
    let Some(given) = text(raw).map_err(|()| "(not text)".to_owned())? else { return Ok(None) };
    match given.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" => Ok(Some(true)),
        "0" | "false" | "f" | "no" | "n" => Ok(Some(false)),
        _ => Err(quote(given)),
    }
}

/// One row: `Ok(Some((id, email normalised, hash)))` to import, `Ok(None)` when it is here
/// already, `Err` why not.
fn decide(
    row: &LegacyUser,
    by_id: &HashMap<i64, Key>,
    emails: &HashMap<Key, i64>,
    seen: &mut Seen,
) -> Result<Option<(i64, String, String)>, String> {
    let id = match text(&row.id) {
        Ok(None) => return Err("its id is missing".into()),
        Err(()) => return Err("its id is not a number".into()),
        Ok(Some(id)) => id.trim().parse::<i64>().map_err(|_| format!("its id {} is not a whole number", quote(id)))?,
    };
    if id <= 0 {
        return Err(format!("its id {id} is not a positive number"));
    }
    if id > MAX_ID {
        return Err(format!("its id {id} is larger than {MAX_ID}, the largest JSON clients hold exactly"));
    }
    if !seen.ids.insert(id) {
        return Err(format!("the same id as an earlier row ({id})"));
    }
    let given = match text(&row.email) {
        Ok(email) => email.map(str::trim).unwrap_or_default(),
        Err(()) => return Err("its email is not text".into()),
    };
    let email =
        crate::accounts::email::normalize(given).map_err(|reason| format!("not an email address ({reason})"))?;
    let key = key(&email_key(&email));
    if let Some(first) = seen.emails.get(&key) {
        return Err(format!("the same email address as row {first}"));
    }
    seen.emails.insert(key, id);
    match (by_id.get(&id), emails.get(&key)) {
        (Some(here), _) if *here == key => return Ok(None),
        (Some(_), _) => return Err(format!("id {id} belongs to another account here")),
        (None, Some(_)) => return Err("an account with this email address exists here".into()),
        (None, None) => {}
    }
    let hash = match text(&row.hashed_password) {
        Ok(Some(hash)) if !hash.trim().is_empty() => hash.trim(),
        Ok(_) => return Err("its password hash is missing".into()),
        Err(()) => return Err("its password hash is not text".into()),
    };
    HashFormat::of(hash).map_err(|why| format!("its password hash is {why}"))?;
    Ok(Some((id, email, hash.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";

    /// Every row's plan, by a fresh planner.
    fn plan(rows: &[LegacyUser], existing: &[(i64, String, Option<String>)]) -> Vec<Planned> {
        let mut planner = Planner::new(existing);
        rows.iter().map(|row| planner.decide(row)).collect()
    }

    fn plan_again(rows: &[LegacyUser], existing: &[(i64, String, Option<String>)]) -> Vec<Planned> {
        plan(rows, existing)
    }

    fn accounts(plan: &[Planned]) -> Vec<&ImportedUser> {
        plan.iter().filter_map(|planned| planned.account.as_ref()).collect()
    }

    fn row(id: i64, email: &str, username: Option<&str>, hash: &str) -> LegacyUser {
        LegacyUser {
            id: Some(id.to_string().into_bytes()),
            email: Some(email.into()),
            username: username.map(Into::into),
            hashed_password: Some(hash.into()),
            is_active: Some(b"1".to_vec()),
        }
    }

    #[test]
    fn rows_are_decided_as_registration_would() {
        let existing =
            vec![(1, "zed@example.com".to_owned(), Some("zed".to_owned())), (7, "kept@example.com".into(), None)];
        let rows = [
            row(101, " Ada@Example.com ", Some("ada"), BCRYPT),
            row(102, "ADA@example.com", None, BCRYPT),
            row(103, "not-an-email", None, BCRYPT),
            row(104, "plain@example.com", None, "hunter2"),
            row(1, "someone@example.com", None, BCRYPT),
            row(105, "zed@example.com", None, BCRYPT),
            row(106, "bo@example.com", Some("has space"), BCRYPT),
            row(107, "cy@example.com", Some("ZED"), BCRYPT),
            row(7, "kept@example.com", None, BCRYPT),
        ];
        let plan = plan(&rows, &existing);
        let verdicts: Vec<_> = plan.iter().map(|r| (r.label.parse::<i64>().unwrap(), r.verdict.clone())).collect();
        assert_eq!(verdicts[0], (101, Verdict::Import));
        assert_eq!(verdicts[1], (102, Verdict::Refused("the same email address as row 101".into())));
        assert!(matches!(&verdicts[2].1, Verdict::Refused(why) if why.starts_with("not an email address")));
        assert!(matches!(&verdicts[3].1, Verdict::Refused(why) if why.contains("unknown or plain-text")));
        assert!(matches!(&verdicts[4].1, Verdict::Refused(why) if why.contains("id 1 belongs to another account")));
        assert!(matches!(&verdicts[5].1, Verdict::Refused(why) if why.contains("exists here")));
        assert_eq!(verdicts[6].1, Verdict::Import);
        assert!(plan[6].warning.as_deref().unwrap().contains("does not fit"));
        assert!(plan[7].warning.as_deref().unwrap().contains("taken"));
        assert_eq!(verdicts[8], (7, Verdict::AlreadyHere));
        let accounts = accounts(&plan);
        assert_eq!(accounts.len(), 3);
        assert_eq!(accounts[0].email, "Ada@example.com");
        assert_eq!(accounts[0].username.as_deref(), Some("ada"));
        assert_eq!(accounts[1].username, None);
        // The same rows again, by a fresh planner: the same plans (the import decides twice).
        let again = plan_again(&rows, &existing);
        assert_eq!(format!("{again:?}"), format!("{plan:?}"));
        // No refusal says anything of a hash's content.
        for planned in &plan {
            if let Verdict::Refused(why) = &planned.verdict {
                assert!(!why.contains("hunter2") && !why.contains("R9h/"), "{why}");
            }
        }
    }

    #[test]
    fn odd_values_refuse_their_row_only() {
        let raw = |text: &str| Some(text.as_bytes().to_vec());
        let good = |id: &str, email: &str| LegacyUser {
            id: raw(id),
            email: raw(email),
            hashed_password: raw(BCRYPT),
            is_active: raw("1"),
            ..Default::default()
        };
        let rows = [
            good("1", "a@example.com"),
            LegacyUser { id: None, ..good("", "b@example.com") },
            good("7.0", "c@example.com"),
            good("abc", "d@example.com"),
            good("9223372036854775807", "e@example.com"),
            good("9007199254740992", "f@example.com"),
            good("1", "g@example.com"),
            LegacyUser { email: Some(vec![0xff, 0xfe]), ..good("2", "") },
            LegacyUser { hashed_password: None, ..good("3", "h@example.com") },
            LegacyUser { is_active: raw("maybe"), ..good("4", "i@example.com") },
            LegacyUser { is_active: None, ..good("5", "j@example.com") },
            LegacyUser { is_active: raw("false"), username: raw(&"x".repeat(100_000)), ..good("6", "k@example.com") },
            LegacyUser { username: Some(vec![0xc3]), ..good("9007199254740991", "l@example.com") },
        ];
        let plan = plan(&rows, &[]);
        let said: Vec<String> = plan
            .iter()
            .map(|r| match &r.verdict {
                Verdict::Refused(why) => format!("{}: {why}", r.label),
                other => format!("{}: {other:?} {}", r.label, r.warning.as_deref().unwrap_or("")),
            })
            .collect();
        let expected = [
            "1: Import ",
            "at position 2: its id is missing",
            "7.0: its id \"7.0\" is not a whole number",
            "abc: its id \"abc\" is not a whole number",
            "9223372036854775807: its id 9223372036854775807 is larger than 9007199254740991",
            "9007199254740992: its id 9007199254740992 is larger than",
            "1: the same id as an earlier row (1)",
            "2: its email is not text",
            "3: its password hash is missing",
            "4: its is_active \"maybe\" is neither true nor false",
            "5: Import its is_active is NULL: imported deactivated",
            "6: Import its username \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" does not fit",
            "9007199254740991: Import its username is not text: dropped",
        ];
        for (said, expected) in said.iter().zip(expected) {
            assert!(said.starts_with(expected), "{said:?} should start with {expected:?}");
        }
        assert_eq!(said.len(), expected.len());
        let active: Vec<bool> = accounts(&plan).iter().map(|a| a.is_active).collect();
        assert_eq!(active, [true, false, false, true], "NULL and false import deactivated");
    }

    #[test]
    fn a_format_the_component_cannot_check_refuses_its_rows() {
        let pbkdf2 = "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk";
        let rows = [
            row(1, "a@example.com", None, BCRYPT),
            row(2, "b@example.com", None, pbkdf2),
            row(3, "c@example.com", None, BCRYPT),
        ];
        let mut plan = plan(&rows, &[]);
        let formats: Vec<_> = plan.iter().filter_map(Planned::format).collect();
        assert_eq!(formats, ["bcrypt $2b$ cost 12", "pbkdf2-sha256 29000 rounds", "bcrypt $2b$ cost 12"]);
        for planned in plan.iter_mut().filter(|p| p.format().as_deref() == Some("bcrypt $2b$ cost 12")) {
            planned.refuse_format("bcrypt $2b$ cost 12", "takes too long");
        }
        assert_eq!(accounts(&plan).iter().map(|a| a.id).collect::<Vec<_>>(), [2]);
        assert_eq!(plan[0].verdict, Verdict::Refused("its password hash (bcrypt $2b$ cost 12) takes too long".into()));
        assert_eq!(plan[1].verdict, Verdict::Import);
        assert!(matches!(plan[2].verdict, Verdict::Refused(_)));
    }
}
