//! Moving in from the FastAPI service: its users, with their ids and password hashes, checked
//! row by row against the rules registration applies, then written in one transaction.
//!
//! Nothing about a refused row's hash is ever said (only its old id and why); the hashes are
//! checked by their format and cost here, and against passwords only by the component, at
//! each imported account's first login, which then re-hashes it to argon2id.

use std::collections::{HashMap, HashSet};

use crate::password::HashFormat;
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
/// none), what comes of it, and a warning (a username dropped, an unknown state).
#[derive(Debug, Clone)]
pub struct Planned {
    pub label: String,
    pub verdict: Verdict,
    pub warning: Option<String>,
}

/// Every row's verdict, and the accounts to create (with the row each comes from).
pub struct Plan {
    pub rows: Vec<Planned>,
    pub accounts: Vec<ImportedUser>,
    account_rows: Vec<usize>,
}

impl Plan {
    pub fn count(&self, wanted: fn(&Verdict) -> bool) -> usize {
        self.rows.iter().filter(|row| wanted(&row.verdict)).count()
    }

    /// The formats (with their costs) of the hashes to import, each with one of its hashes:
    /// what the component must be able to check here.
    pub fn formats(&self) -> Vec<(String, &str)> {
        let mut formats: Vec<(String, &str)> = Vec::new();
        for account in &self.accounts {
            let Ok(format) = HashFormat::of(&account.hashed_password) else { continue };
            let format = format.describe();
            if !formats.iter().any(|(known, _)| *known == format) {
                formats.push((format, &account.hashed_password));
            }
        }
        formats
    }

    /// Refuses every row whose hash is of `format` ([`HashFormat::describe`]), for `why`.
    pub fn refuse_format(&mut self, format: &str, why: &str) {
        let mut kept = (Vec::new(), Vec::new());
        for (account, row) in std::mem::take(&mut self.accounts).into_iter().zip(std::mem::take(&mut self.account_rows))
        {
            if HashFormat::of(&account.hashed_password).is_ok_and(|f| f.describe() == format) {
                self.rows[row].verdict = Verdict::Refused(format!("its password hash ({format}) {why}"));
            } else {
                kept.0.push(account);
                kept.1.push(row);
            }
        }
        (self.accounts, self.account_rows) = kept;
    }
}

/// The largest id kept: JSON clients (JavaScript's numbers) hold integers exactly up to 2^53 - 1.
pub const MAX_ID: i64 = (1 << 53) - 1;
/// Longest value quoted in the report, in characters.
const QUOTED_CHARS: usize = 40;

/// Decides each of `rows` against the accounts here (`existing`: id, email key, username key),
/// as registration would: an id of its own, a valid email (normalised the same way), unique by
/// its key among the rows and the accounts here; a username kept when it fits the rules and is
/// free, dropped with a warning otherwise; a well-formed hash of a format the component checks,
/// within its bounds.
pub fn plan(rows: &[LegacyUser], existing: &[(i64, String, Option<String>)]) -> Plan {
    let by_id: HashMap<i64, &str> = existing.iter().map(|(id, key, _)| (*id, key.as_str())).collect();
    let mut emails: HashMap<String, i64> = existing.iter().map(|(id, key, _)| (key.clone(), *id)).collect();
    let mut usernames: HashSet<String> = existing.iter().filter_map(|(_, _, name)| name.clone()).collect();
    let mut seen = Seen::default();
    let mut plan = Plan { rows: Vec::with_capacity(rows.len()), accounts: Vec::new(), account_rows: Vec::new() };
    for (position, row) in rows.iter().enumerate() {
        let label = match text(&row.id) {
            Ok(Some(id)) if !id.trim().is_empty() => shorten(id.trim()),
            _ => format!("at position {}", position + 1),
        };
        let mut warnings = Vec::new();
        let verdict = match decide(row, &by_id, &emails, &mut seen) {
            Err(refusal) => Verdict::Refused(refusal),
            Ok(None) => Verdict::AlreadyHere,
            Ok(Some(account)) => {
                let username = match text(&row.username) {
                    Ok(name) => name.map(str::trim).filter(|name| !name.is_empty()),
                    Err(()) => {
                        warnings.push("its username is not text: dropped".to_owned());
                        None
                    }
                };
                let username = match username {
                    None => None,
                    Some(name) if crate::username::check(name).is_err() => {
                        warnings.push(format!("its username {} does not fit the username rules: dropped", quote(name)));
                        None
                    }
                    Some(name) if usernames.contains(&username_key(name)) => {
                        warnings.push(format!("its username {} is taken: dropped", quote(name)));
                        None
                    }
                    Some(name) => Some(name.to_owned()),
                };
                let is_active = match active(&row.is_active) {
                    Ok(Some(active)) => active,
                    Ok(None) => {
                        warnings.push(
                            "its is_active is NULL: imported deactivated (`host-server users activate EMAIL` lets \
                             it in)"
                                .to_owned(),
                        );
                        false
                    }
                    Err(given) => {
                        let refusal = format!("its is_active {given} is neither true nor false");
                        plan.rows.push(Planned { label, verdict: Verdict::Refused(refusal), warning: None });
                        continue;
                    }
                };
                let (id, email, hashed_password) = account;
                emails.insert(email_key(&email), id);
                if let Some(name) = &username {
                    usernames.insert(username_key(name));
                }
                plan.accounts.push(ImportedUser { id, email, username, hashed_password, is_active });
                plan.account_rows.push(plan.rows.len());
                Verdict::Import
            }
        };
        let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        plan.rows.push(Planned { label, verdict, warning });
    }
    plan
}

/// The ids and email keys of the rows decided so far, with how the report names their rows.
#[derive(Default)]
struct Seen {
    ids: HashSet<i64>,
    emails: HashMap<String, String>,
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
    by_id: &HashMap<i64, &str>,
    emails: &HashMap<String, i64>,
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
    let email = crate::email::normalize(given).map_err(|reason| format!("not an email address ({reason})"))?;
    let key = email_key(&email);
    if let Some(first) = seen.emails.get(&key) {
        return Err(format!("the same email address as row {first}"));
    }
    seen.emails.insert(key.clone(), id.to_string());
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
        let verdicts: Vec<_> = plan.rows.iter().map(|r| (r.label.parse::<i64>().unwrap(), r.verdict.clone())).collect();
        assert_eq!(verdicts[0], (101, Verdict::Import));
        assert_eq!(verdicts[1], (102, Verdict::Refused("the same email address as row 101".into())));
        assert!(matches!(&verdicts[2].1, Verdict::Refused(why) if why.starts_with("not an email address")));
        assert!(matches!(&verdicts[3].1, Verdict::Refused(why) if why.contains("unknown or plain-text")));
        assert!(matches!(&verdicts[4].1, Verdict::Refused(why) if why.contains("id 1 belongs to another account")));
        assert!(matches!(&verdicts[5].1, Verdict::Refused(why) if why.contains("exists here")));
        assert_eq!(verdicts[6].1, Verdict::Import);
        assert!(plan.rows[6].warning.as_deref().unwrap().contains("does not fit"));
        assert!(plan.rows[7].warning.as_deref().unwrap().contains("taken"));
        assert_eq!(verdicts[8], (7, Verdict::AlreadyHere));
        assert_eq!(plan.accounts.len(), 3);
        assert_eq!(plan.accounts[0].email, "Ada@example.com");
        assert_eq!(plan.accounts[0].username.as_deref(), Some("ada"));
        assert_eq!(plan.accounts[1].username, None);
        // No refusal says anything of a hash's content.
        for planned in &plan.rows {
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
            .rows
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
        let active: Vec<bool> = plan.accounts.iter().map(|a| a.is_active).collect();
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
        assert_eq!(
            plan.formats().iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            ["bcrypt $2b$ cost 12", "pbkdf2-sha256 29000 rounds"]
        );
        plan.refuse_format("bcrypt $2b$ cost 12", "takes too long");
        assert_eq!(plan.accounts.len(), 1);
        assert_eq!(plan.accounts[0].id, 2);
        assert_eq!(
            plan.rows[0].verdict,
            Verdict::Refused("its password hash (bcrypt $2b$ cost 12) takes too long".into())
        );
        assert_eq!(plan.rows[1].verdict, Verdict::Import);
        assert!(matches!(plan.rows[2].verdict, Verdict::Refused(_)));
    }
}
