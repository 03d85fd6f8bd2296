//! Moving in from the FastAPI service: its users, with their ids and password hashes, checked
//! row by row against the rules registration applies, then written in one transaction.
//!
//! Nothing about a refused row's hash is ever said (only its old id and why); the hashes are
//! checked by their format and cost here, and against passwords only by the component, at
//! each imported account's first login, which then re-hashes it to argon2id.

use std::collections::{HashMap, HashSet};

use crate::password::HashFormat;
use crate::store::source::LegacyUser;
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

/// The plan for one row: its old id, what comes of it, and a warning (a username dropped).
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: i64,
    pub verdict: Verdict,
    pub warning: Option<String>,
}

/// Every row's verdict, and the accounts to create.
pub struct Plan {
    pub rows: Vec<Planned>,
    pub accounts: Vec<ImportedUser>,
}

impl Plan {
    pub fn count(&self, wanted: fn(&Verdict) -> bool) -> usize {
        self.rows.iter().filter(|row| wanted(&row.verdict)).count()
    }
}

/// Decides each of `rows` against the accounts here (`existing`: id, email key, username key),
/// as registration would: a valid email (normalised the same way), unique by its key among the
/// rows and the accounts here; a username kept when it fits the rules and is free, dropped with
/// a warning otherwise; a hash of a format the component checks, within its bounds; an id free.
pub fn plan(rows: &[LegacyUser], existing: &[(i64, String, Option<String>)]) -> Plan {
    let by_id: HashMap<i64, &str> = existing.iter().map(|(id, key, _)| (*id, key.as_str())).collect();
    let mut emails: HashMap<String, i64> = existing.iter().map(|(id, key, _)| (key.clone(), *id)).collect();
    let mut usernames: HashSet<String> = existing.iter().filter_map(|(_, _, name)| name.clone()).collect();
    let mut first_row_of: HashMap<String, i64> = HashMap::new();
    let mut planned = Vec::with_capacity(rows.len());
    let mut accounts = Vec::new();
    for row in rows {
        let mut warning = None;
        let verdict = match decide(row, &by_id, &emails, &mut first_row_of) {
            Err(refusal) => Verdict::Refused(refusal),
            Ok(None) => Verdict::AlreadyHere,
            Ok(Some((email, hashed_password))) => {
                let username = row.username.as_deref().map(str::trim).filter(|name| !name.is_empty());
                let username = match username {
                    None => None,
                    Some(name) if crate::username::check(name).is_err() => {
                        warning = Some(format!("its username {name:?} does not fit the username rules: dropped"));
                        None
                    }
                    Some(name) if usernames.contains(&username_key(name)) => {
                        warning = Some(format!("its username {name:?} is taken: dropped"));
                        None
                    }
                    Some(name) => Some(name.to_owned()),
                };
                emails.insert(email_key(&email), row.id);
                if let Some(name) = &username {
                    usernames.insert(username_key(name));
                }
                accounts.push(ImportedUser { id: row.id, email, username, hashed_password, is_active: row.is_active });
                Verdict::Import
            }
        };
        planned.push(Planned { id: row.id, verdict, warning });
    }
    Plan { rows: planned, accounts }
}

/// One row: `Ok(Some)` to import (the email normalised, the hash), `Ok(None)` when it is here
/// already, `Err` why not.
fn decide(
    row: &LegacyUser,
    by_id: &HashMap<i64, &str>,
    emails: &HashMap<String, i64>,
    first_row_of: &mut HashMap<String, i64>,
) -> Result<Option<(String, String)>, String> {
    let given = row.email.as_deref().map(str::trim).unwrap_or_default();
    let email = crate::email::normalize(given).map_err(|reason| format!("not an email address ({reason})"))?;
    let key = email_key(&email);
    if let Some(first) = first_row_of.get(&key) {
        return Err(format!("the same email address as row {first}"));
    }
    first_row_of.insert(key.clone(), row.id);
    match (by_id.get(&row.id), emails.get(&key)) {
        (Some(here), _) if *here == key => return Ok(None),
        (Some(_), _) => return Err(format!("id {} belongs to another account here", row.id)),
        (None, Some(_)) => return Err("an account with this email address exists here".into()),
        (None, None) => {}
    }
    let hash = row.hashed_password.as_deref().map(str::trim).unwrap_or_default();
    HashFormat::of(hash).map_err(|why| format!("its password hash is {why}"))?;
    if row.id <= 0 {
        return Err(format!("id {} is not a positive number", row.id));
    }
    Ok(Some((email, hash.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";

    fn row(id: i64, email: &str, username: Option<&str>, hash: &str) -> LegacyUser {
        LegacyUser {
            id,
            email: Some(email.into()),
            username: username.map(Into::into),
            hashed_password: Some(hash.into()),
            is_active: true,
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
        let verdicts: Vec<_> = plan.rows.iter().map(|r| (r.id, r.verdict.clone())).collect();
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
}
